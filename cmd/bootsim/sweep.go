package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/bootsim/bootsim/scenarios"
	"github.com/bootsim/bootsim/storage"
	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

type sweepFlags struct {
	output     string
	jsonFile   string
	junitFile  string
	htmlFile   string
	seed       string
	modes      string
	tornSeeds  int
	workers    int
	shard      string
	shardTotal int
	replay     bool
	everyPage  bool
	random     int
	maxFaults  int
	device     string
	region     string
	stage      string
	phase      string
	ops        string
}

func newSweepCmd(g *globalFlags) *cobra.Command {
	var f sweepFlags
	cmd := &cobra.Command{
		Use:   "sweep SCENARIO|FILE|-",
		Short: "Cut power at every storage op of a scenario and check each recovery",
		Long: `Run a scenario once to record its storage ops, then, for every op and mode,
cut power there: before the op starts, after it completes, or tearing it
(with several seeds). Each cut is forked from the recorded run (its storage
rebuilt at that op, the update service as it was) and the device powers on
again and recovers under the scenario's sweep: section (default: an
application must run within 10 boots and 10 minutes). The invariants
(no-brick, authentic, no-downgrade, sotp-intact) and the section's
expectations are checked after every recovery.

Every failure has a replay command that plays it from the start:
  bootsim run SCENARIO --cut op=1234,mode=torn,seed=7

--random N makes N runs instead, each with up to --max-faults faults drawn
from the seed, swarm style (each run enables a random subset of the fault
kinds: power cuts, torn ops, bit flips, I/O errors, stuck bits, a card
pulled out, link drops), played from the start (a device hit by a bit flip keeps running, so
such runs cannot be forked); a failure is shrunk to the fewest faults at the
earliest ops that still fail the same way, and replays with --faults.

Points are assigned to shards by a stable hash, so a point's result does not
depend on the shard count; --shard I/N (I from 1) picks one. Without it the
shard comes from the environment of the CI engine:
  Bazel       TEST_SHARD_INDEX (from 0), TEST_TOTAL_SHARDS; touches
              TEST_SHARD_STATUS_FILE and writes JUnit to XML_OUTPUT_FILE
  GitLab      CI_NODE_INDEX (from 1), CI_NODE_TOTAL (parallel: N)
  Kubernetes  JOB_COMPLETION_INDEX (from 0) with --shard-total N
'bootsim sweep merge' joins the shards' JSON reports.

Exit status: 0 every point recovered, 1 a point failed, 2 bad input.`,
		Example: `  bootsim sweep install-from-sd
  bootsim sweep install-from-sd --modes torn --torn-seeds 8 --phase body
  bootsim sweep my-scenario.yaml -o json > sweep.json
  bootsim sweep seed-update-flow --shard 2/4 -o json > shard-2.json
  bootsim sweep merge shard-*.json
  bootsim sweep update-resume-after-reset-internal --random 500 --max-faults 2`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeScenarios,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSweep(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	addOutputFlag(cmd, &f.output, "text|json|junit")
	fl.StringVar(&f.jsonFile, "json", "", "also write the JSON report to this file")
	fl.StringVar(&f.junitFile, "junit", "", "also write the JUnit report to this file")
	fl.StringVar(&f.htmlFile, "html", "", "also write an HTML page of the sweep to this file: every cut point on the op axis, coloured by outcome")
	fl.StringVar(&f.seed, "seed", "", "sweep with this seed instead of the scenario's")
	fl.StringVar(&f.modes, "modes", "before,after,torn", "the cuts to try at every op: before, after, torn")
	fl.IntVar(&f.tornSeeds, "torn-seeds", scenarios.DefaultTornSeeds, "seeds a torn cut is tried with at every op")
	fl.IntVar(&f.workers, "workers", runtime.NumCPU(), "points recovered at once")
	fl.StringVar(&f.shard, "shard", "", "run shard I of N (I from 1), e.g. 2/4")
	fl.IntVar(&f.shardTotal, "shard-total", 0, "the number of shards, with JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs)")
	fl.BoolVar(&f.replay, "replay", false, "run every point from the start instead of forking (the slow reference)")
	fl.BoolVar(&f.everyPage, "every-page", false, "cut at every page of a call that programs page by page (the classic bootloader's copy) instead of sweeping the call as one op: a point per page")
	fl.IntVar(&f.random, "random", 0, "instead of every op, make N runs with random fault schedules (power cuts, torn ops, bit flips, I/O errors, stuck bits, a card pulled out, link drops) and shrink each failure")
	fl.IntVar(&f.maxFaults, "max-faults", scenarios.DefaultMaxFaults, "with --random: the most faults in one run")
	fl.StringVar(&f.device, "device", "", "cut only at ops on this device (internal, sd, spi)")
	fl.StringVar(&f.region, "region", "", "cut only at ops on this region (e.g. active-app, slot-0)")
	fl.StringVar(&f.stage, "stage", "", "cut only at ops this stage issues (bootloader, application)")
	fl.StringVar(&f.phase, "phase", "", "cut only at ops of this phase (e.g. erase, header, body, download)")
	fl.StringVar(&f.ops, "ops", "", "cut only at ops in this range of journal indexes, e.g. 100..200")
	cmd.AddCommand(newSweepMergeCmd())
	return cmd
}

// shardSpec is the shard a sweep runs and where it came from.
type shardSpec struct {
	index, total int
	from         string
}

// resolveShard reads the shard from --shard, or else from the environment
// protocols of Bazel, GitLab and Kubernetes Indexed Jobs.
func resolveShard(flag string, total int, getenv func(string) string) (shardSpec, error) {
	atoi := func(name, v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, usageErr("%s=%q: want an integer", name, v)
		}
		return n, nil
	}
	var (
		s   shardSpec
		err error
	)
	switch {
	case flag != "":
		i, n, ok := strings.Cut(flag, "/")
		if !ok {
			return s, usageErr("--shard %q: want I/N, e.g. 2/4", flag)
		}
		if s.index, err = atoi("--shard", i); err != nil {
			return s, err
		}
		if s.total, err = atoi("--shard", n); err != nil {
			return s, err
		}
		s.from = "--shard"
	case getenv("TEST_TOTAL_SHARDS") != "":
		if s.total, err = atoi("TEST_TOTAL_SHARDS", getenv("TEST_TOTAL_SHARDS")); err != nil {
			return s, err
		}
		if s.index, err = atoi("TEST_SHARD_INDEX", getenv("TEST_SHARD_INDEX")); err != nil {
			return s, err
		}
		s.index++
		s.from = "Bazel (TEST_SHARD_INDEX)"
	case getenv("CI_NODE_TOTAL") != "":
		if s.total, err = atoi("CI_NODE_TOTAL", getenv("CI_NODE_TOTAL")); err != nil {
			return s, err
		}
		if s.index, err = atoi("CI_NODE_INDEX", getenv("CI_NODE_INDEX")); err != nil {
			return s, err
		}
		s.from = "GitLab (CI_NODE_INDEX)"
	case getenv("JOB_COMPLETION_INDEX") != "":
		if total == 0 {
			return s, usageErr("JOB_COMPLETION_INDEX is set: give the number of shards with --shard-total N (the Job's completions)")
		}
		if s.index, err = atoi("JOB_COMPLETION_INDEX", getenv("JOB_COMPLETION_INDEX")); err != nil {
			return s, err
		}
		s.index++
		s.total = total
		s.from = "Kubernetes (JOB_COMPLETION_INDEX)"
	default:
		return shardSpec{index: 1, total: 1}, nil
	}
	if s.total < 1 || s.index < 1 || s.index > s.total {
		return s, usageErr("shard %d of %d from %s: want 1 to %d of at least 1", s.index, s.total, s.from, s.total)
	}
	return s, nil
}

// parseModes reads --modes.
func parseModes(s string) ([]storage.FaultMode, error) {
	var out []storage.FaultMode
	for _, name := range strings.Split(s, ",") {
		m, err := storage.ParseFaultMode(strings.TrimSpace(name))
		if err != nil || !m.CutsPower() {
			return nil, usageErr("--modes: %q: want before, after or torn", name)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out, nil
}

// parseOps reads --ops A..B (inclusive; either end may be left out).
func parseOps(s string) (from, until int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "..")
	bad := usageErr("--ops %q: want FIRST..LAST journal indexes, e.g. 100..200 (either may be left out)", s)
	if !ok {
		return 0, 0, bad
	}
	if a != "" {
		if from, err = strconv.Atoi(a); err != nil || from < 0 {
			return 0, 0, bad
		}
	}
	if b != "" {
		last, err := strconv.Atoi(b)
		if err != nil || last < from {
			return 0, 0, bad
		}
		until = last + 1
	}
	return from, until, nil
}

func runSweep(cmd *cobra.Command, g *globalFlags, f sweepFlags, arg string) error {
	if err := checkOutput(f.output, "text", "json", "junit"); err != nil {
		return err
	}
	var opts scenarios.SweepOptions
	if f.seed != "" {
		s, err := strconv.ParseUint(f.seed, 10, 64)
		if err != nil {
			return usageErr("--seed %q: want a non-negative integer", f.seed)
		}
		opts.Seed = &s
	}
	var err error
	if opts.Modes, err = parseModes(f.modes); err != nil {
		return err
	}
	if f.tornSeeds < 1 {
		return usageErr("--torn-seeds %d: want at least 1", f.tornSeeds)
	}
	if f.workers < 1 {
		return usageErr("--workers %d: want at least 1", f.workers)
	}
	opts.TornSeeds, opts.Workers, opts.Replay, opts.EveryPage = f.tornSeeds, f.workers, f.replay, f.everyPage
	opts.Filter = scenarios.OpFilter{Device: f.device, Region: f.region, Stage: f.stage, Phase: f.phase}
	if opts.Filter.From, opts.Filter.Until, err = parseOps(f.ops); err != nil {
		return err
	}
	shard, err := resolveShard(f.shard, f.shardTotal, os.Getenv)
	if err != nil {
		return err
	}
	opts.Shard, opts.Shards = shard.index, shard.total
	list, err := loadScenarios(cmd, []string{arg})
	if err != nil {
		return err
	}
	if f.htmlFile != "" && f.random > 0 {
		return usageErr("--html draws an exhaustive sweep; a random campaign's runs have no op axis (use --json)")
	}
	for _, o := range [][2]string{{"json", f.jsonFile}, {"junit", f.junitFile}, {"html", f.htmlFile}} {
		if err := checkWritable(o[0], o[1]); err != nil {
			return err
		}
	}
	l := list[0]
	if f.random < 0 || (f.random > 0 && f.maxFaults < 1) {
		return usageErr("--random %d --max-faults %d: want positive numbers", f.random, f.maxFaults)
	}
	// Flags of one kind of sweep given to the other would be ignored:
	// refuse them instead.
	fl := cmd.Flags()
	if f.random > 0 {
		for _, name := range []string{"modes", "torn-seeds", "replay", "every-page", "device", "region", "stage", "phase", "ops"} {
			if fl.Changed(name) {
				return usageErr("--%s applies to an exhaustive sweep, not to --random (which draws its own faults)", name)
			}
		}
	} else if fl.Changed("max-faults") {
		return usageErr("--max-faults applies to --random")
	}
	stderr := cmd.ErrOrStderr()
	if isTerminal(stderr) && !g.quiet {
		p := mpb.New(mpb.WithOutput(stderr), mpb.WithWidth(40))
		var bar *mpb.Bar
		opts.Progress = func(done, total int) {
			if bar == nil {
				bar = p.AddBar(int64(total), mpb.PrependDecorators(decor.Name("sweep "+l.Name+" "), decor.CountersNoUnit("%d/%d points")),
					mpb.AppendDecorators(decor.Percentage()))
			}
			bar.SetCurrent(int64(done))
		}
		defer p.Wait()
	}
	var doc *sweepJSON
	if f.random > 0 {
		rep, err := scenarios.RandomCampaign(l, scenarios.RandomOptions{Seed: opts.Seed, Runs: f.random, MaxFaults: f.maxFaults,
			Workers: opts.Workers, Shard: opts.Shard, Shards: opts.Shards, Progress: opts.Progress})
		if err != nil {
			return usageErr("%v", err)
		}
		doc = randomJSONOf(rep, f.maxFaults)
	} else {
		rep, err := scenarios.SweepScenario(l, opts)
		if err != nil {
			return usageErr("%v", err)
		}
		doc = sweepJSONOf(rep, opts)
		if f.htmlFile != "" {
			if err := writeFileWith(f.htmlFile, func(w io.Writer) error { _, err := io.WriteString(w, scenarios.SweepHTML(rep)); return err }); err != nil {
				return err
			}
		}
	}
	out := cmd.OutOrStdout()
	switch f.output {
	case "json":
		if err := writeJSON(out, doc); err != nil {
			return err
		}
	case "junit":
		if err := writeSweepJUnit(out, doc); err != nil {
			return err
		}
	default:
		printSweep(out, g.styles(out), doc, g.quiet)
	}
	if f.jsonFile != "" {
		if err := writeFileWith(f.jsonFile, func(w io.Writer) error { return writeJSON(w, doc) }); err != nil {
			return err
		}
	}
	junitFile := f.junitFile
	if junitFile == "" && shard.from == "Bazel (TEST_SHARD_INDEX)" {
		junitFile = os.Getenv("XML_OUTPUT_FILE")
	}
	if junitFile != "" {
		if err := writeFileWith(junitFile, func(w io.Writer) error { return writeSweepJUnit(w, doc) }); err != nil {
			return err
		}
	}
	// Bazel asks a test that shards to say so by touching this file.
	if status := os.Getenv("TEST_SHARD_STATUS_FILE"); status != "" && shard.from == "Bazel (TEST_SHARD_INDEX)" {
		if err := os.WriteFile(status, nil, 0o644); err != nil {
			return err
		}
	}
	if doc.Failed > 0 {
		return failed("")
	}
	return nil
}

// writeFileWith creates a file and writes it with fn; a write that fails
// is exit 3 with the path.
func writeFileWith(name string, fn func(io.Writer) error) error {
	fh, err := os.Create(name)
	if err != nil {
		return usageErr("%v", err)
	}
	if err := fn(fh); err != nil {
		fh.Close()
		return outputErr(name, err)
	}
	if err := fh.Close(); err != nil {
		return outputErr(name, err)
	}
	return nil
}

// checkWritable creates (or truncates) an output file before the work that
// fills it, so that a bad path is found at once.
func checkWritable(flag, name string) error {
	if name == "" {
		return nil
	}
	fh, err := os.Create(name)
	if err != nil {
		return usageErr("--%s: %v", flag, err)
	}
	return fh.Close()
}

// sweepJSON is the sweep report, schema bootsim/sweep/v1.
type sweepJSON struct {
	Schema string `json:"schema"`
	// Kind is "exhaustive" (every op in every mode) or "random".
	Kind     string         `json:"kind"`
	Scenario string         `json:"scenario"`
	Seed     uint64         `json:"seed"`
	Modes    []string       `json:"modes"`
	Ops      int            `json:"ops"`
	Points   int            `json:"points"`
	Runs     int            `json:"runs"`
	Shards   []int          `json:"shards"`
	Total    int            `json:"shard_total"`
	Passed   int            `json:"passed"`
	Failed   int            `json:"failed"`
	Bricks   int            `json:"bricks"`
	Weak     int            `json:"known_weaknesses"`
	Classes  map[string]int `json:"classes"`
	Failures []failureJSON  `json:"failures"`
}

type failureJSON struct {
	// Op, Mode and Seed are the point's (for a random run, the last fault
	// of its shrunk schedule).
	Op   int    `json:"op"`
	Mode string `json:"mode"`
	Seed uint64 `json:"seed"`
	// Run, Faults and Shrunk are a random run's number, schedule and
	// shrunk schedule, as --faults takes them.
	Run    *int   `json:"run,omitempty"`
	Faults string `json:"faults,omitempty"`
	Shrunk string `json:"shrunk,omitempty"`
	Class  string `json:"class"`
	Reason string `json:"reason"`
	Replay string `json:"replay"`
}

func sweepJSONOf(rep *scenarios.SweepReport, opts scenarios.SweepOptions) *sweepJSON {
	doc := &sweepJSON{Schema: "bootsim/sweep/v1", Kind: "exhaustive", Scenario: rep.Scenario, Seed: rep.Seed, Ops: rep.Ops, Points: rep.Points,
		Runs: rep.Runs, Shards: []int{rep.Shard}, Total: rep.Shards, Passed: rep.Passed, Failed: rep.Failed, Bricks: rep.Bricks,
		Weak: rep.Weak, Classes: map[string]int{}, Failures: []failureJSON{}}
	for _, m := range opts.Modes {
		name := m.String()
		if m == storage.FaultTorn {
			name = fmt.Sprintf("torn×%d", opts.TornSeeds)
		}
		doc.Modes = append(doc.Modes, name)
	}
	for _, r := range rep.Failures() {
		doc.Classes[r.Class]++
		doc.Failures = append(doc.Failures, failureJSON{Op: r.Op, Mode: r.Mode.String(), Seed: r.Seed, Class: r.Class,
			Reason: r.Reason, Replay: shellCommand(append([]string{"bootsim", "run"}, r.Replay...))})
	}
	return doc
}

func randomJSONOf(rep *scenarios.RandomReport, maxFaults int) *sweepJSON {
	doc := &sweepJSON{Schema: "bootsim/sweep/v1", Kind: "random", Scenario: rep.Scenario, Seed: rep.Seed, Ops: rep.Ops,
		Points: rep.Total, Runs: rep.Runs, Shards: []int{rep.Shard}, Total: rep.Shards, Passed: rep.Passed, Failed: rep.Failed,
		Bricks: rep.Bricks, Weak: rep.Weak, Classes: map[string]int{}, Failures: []failureJSON{},
		Modes: []string{fmt.Sprintf("random×%d", maxFaults)}}
	for _, r := range rep.Failures() {
		doc.Classes[r.Class]++
		last := r.Shrunk[len(r.Shrunk)-1]
		mode := last.Mode.String()
		if last.LinkDrop > 0 {
			mode = "link-drop"
		}
		run := r.Run
		doc.Failures = append(doc.Failures, failureJSON{Op: last.Op, Mode: mode, Seed: last.Seed, Run: &run,
			Faults: r.Faults.String(), Shrunk: r.Shrunk.String(), Class: r.Class, Reason: r.Reason,
			Replay: shellCommand(append([]string{"bootsim", "run"}, r.Replay...))})
	}
	return doc
}

// shellCommand joins words into a command line, quoting those that need it.
func shellCommand(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}

func printSweep(w io.Writer, st styles, doc *sweepJSON, quiet bool) {
	shard := ""
	if doc.Total > 1 {
		shard = fmt.Sprintf(", shard %s of %d: %d of them", joinInts(doc.Shards), doc.Total, doc.Runs)
	}
	unit := "points"
	if doc.Kind == "random" {
		unit = "runs"
	}
	if !quiet || doc.Failed > 0 {
		if doc.Kind == "random" {
			fmt.Fprintf(w, "random campaign %s (seed %d): %d runs of up to %s faults over %d ops%s\n", doc.Scenario, doc.Seed, doc.Points,
				strings.TrimPrefix(doc.Modes[0], "random×"), doc.Ops, shard)
		} else {
			fmt.Fprintf(w, "sweep %s (seed %d): %d ops × %s = %d points%s\n", doc.Scenario, doc.Seed, doc.Ops, strings.Join(doc.Modes, ", "), doc.Points, shard)
		}
	}
	for _, f := range doc.Failures {
		if f.Run != nil {
			fmt.Fprintf(w, "%s  run %d  %s: %s\n", st.fail("FAIL"), *f.Run, f.Class, f.Reason)
			fmt.Fprintf(w, "      faults: %s\n      shrunk: %s\n", f.Faults, f.Shrunk)
		} else {
			fmt.Fprintf(w, "%s  op=%d mode=%s seed=%d  %s: %s\n", st.fail("FAIL"), f.Op, f.Mode, f.Seed, f.Class, f.Reason)
		}
		fmt.Fprintf(w, "      replay: %s --serial -vv\n", f.Replay)
	}
	summary := fmt.Sprintf("%d %s: %d passed", doc.Runs, unit, doc.Passed)
	if doc.Weak > 0 {
		summary += fmt.Sprintf(" (%d showing a known weakness)", doc.Weak)
	}
	summary += fmt.Sprintf(", %d failed", doc.Failed)
	if doc.Failed > 0 {
		var parts []string
		for _, c := range []string{scenarios.ClassBrick, scenarios.ClassForgery, scenarios.ClassDowngrade, scenarios.ClassSOTPLoss, scenarios.ClassExpectation} {
			if n := doc.Classes[c]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, c))
			}
		}
		summary += " (" + strings.Join(parts, ", ") + ")"
		summary = st.fail(summary)
	}
	if !quiet || doc.Failed > 0 {
		fmt.Fprintln(w, summary)
	}
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// writeSweepJUnit writes one test case per failing point and one for the
// sweep as a whole.
func writeSweepJUnit(w io.Writer, doc *sweepJSON) error {
	suite := junitSuite{Name: "bootsim sweep " + doc.Scenario, Properties: []junitProperty{{"time", "virtual seconds are not measured by a sweep"}}}
	class := "bootsim.sweep." + doc.Scenario
	for _, f := range doc.Failures {
		c := junitCase{Name: fmt.Sprintf("op=%d,mode=%s,seed=%d", f.Op, f.Mode, f.Seed), Classname: class, Time: "0",
			Failure: &junitFailure{Message: f.Class + ": " + f.Reason, Type: f.Class, Body: "replay: " + f.Replay + " --serial -vv\n"}}
		suite.Cases = append(suite.Cases, c)
		suite.Failures++
	}
	summary := junitCase{Name: fmt.Sprintf("%d points", doc.Runs), Classname: class, Time: "0",
		SystemOut: fmt.Sprintf("%d ops, %d points in the sweep, %d run here: %d passed, %d failed, %d bricks\n", doc.Ops, doc.Points, doc.Runs, doc.Passed, doc.Failed, doc.Bricks)}
	if doc.Failed > 0 {
		summary.Failure = &junitFailure{Message: fmt.Sprintf("%d of %d points failed", doc.Failed, doc.Runs), Type: "SweepFailed"}
		suite.Failures++
	}
	suite.Cases = append(suite.Cases, summary)
	suite.Tests = len(suite.Cases)
	suite.Time = "0"
	all := junitSuites{Name: "bootsim", Tests: suite.Tests, Failures: suite.Failures, Time: "0", Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func newSweepMergeCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "merge REPORT.json...",
		Short: "Join the JSON reports of a sweep's shards into one",
		Long: `Join the JSON reports (bootsim sweep -o json) of the shards of one sweep:
same scenario, seed and modes, each shard once. The result is the report
of the whole sweep; missing shards are an error.

Exit status: 0 every point passed, 1 a point failed, 2 bad input.`,
		Example: `  bootsim sweep merge shard-1.json shard-2.json shard-3.json -o json > sweep.json`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "text", "json", "junit"); err != nil {
				return err
			}
			var docs []*sweepJSON
			for _, a := range args {
				data, err := readInput(cmd, a, inReport)
				if err != nil {
					return err
				}
				var d sweepJSON
				if err := json.Unmarshal(data, &d); err != nil {
					return usageErr("%s: not a sweep report: %v", displayName(a), err)
				}
				if d.Schema != "bootsim/sweep/v1" {
					return usageErr("%s: schema %q, want bootsim/sweep/v1", displayName(a), d.Schema)
				}
				docs = append(docs, &d)
			}
			doc, err := mergeSweeps(docs)
			if err != nil {
				return usageErr("%v", err)
			}
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				err = writeJSON(out, doc)
			case "junit":
				err = writeSweepJUnit(out, doc)
			default:
				printSweep(out, styles{}, doc, false)
			}
			if err != nil {
				return err
			}
			if doc.Failed > 0 {
				return failed("")
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output, "text|json|junit")
	return cmd
}

// mergeSweeps joins shard reports of one sweep.
func mergeSweeps(docs []*sweepJSON) (*sweepJSON, error) {
	first := docs[0]
	out := &sweepJSON{Schema: first.Schema, Kind: first.Kind, Scenario: first.Scenario, Seed: first.Seed, Modes: first.Modes, Ops: first.Ops,
		Points: first.Points, Total: first.Total, Classes: map[string]int{}, Failures: []failureJSON{}}
	seen := map[int]bool{}
	for _, d := range docs {
		if d.Scenario != first.Scenario || d.Kind != first.Kind || d.Seed != first.Seed || !slices.Equal(d.Modes, first.Modes) ||
			d.Points != first.Points || d.Total != first.Total {
			return nil, fmt.Errorf("the reports are not shards of one sweep: %s seed %d %v (%d points, %d shards) and %s seed %d %v (%d points, %d shards)",
				first.Scenario, first.Seed, first.Modes, first.Points, first.Total, d.Scenario, d.Seed, d.Modes, d.Points, d.Total)
		}
		if d.Total < 1 || len(d.Shards) == 0 {
			return nil, fmt.Errorf("a report of %s names no shard", d.Scenario)
		}
		for _, s := range d.Shards {
			if s < 1 || s > d.Total {
				return nil, fmt.Errorf("shard %d of %d: want 1 to %d", s, d.Total, d.Total)
			}
			if seen[s] {
				return nil, fmt.Errorf("shard %d of %d is in two reports", s, d.Total)
			}
			seen[s] = true
			out.Shards = append(out.Shards, s)
		}
		out.Runs += d.Runs
		out.Passed += d.Passed
		out.Failed += d.Failed
		out.Bricks += d.Bricks
		out.Weak += d.Weak
		for c, n := range d.Classes {
			out.Classes[c] += n
		}
		out.Failures = append(out.Failures, d.Failures...)
	}
	slices.Sort(out.Shards)
	if len(out.Shards) != out.Total {
		var missing []string
		for s := 1; s <= out.Total; s++ {
			if !seen[s] {
				missing = append(missing, strconv.Itoa(s))
			}
		}
		return nil, fmt.Errorf("shards %s of %d are missing", strings.Join(missing, ", "), out.Total)
	}
	slices.SortFunc(out.Failures, func(a, b failureJSON) int {
		if a.Run != nil && b.Run != nil {
			return *a.Run - *b.Run
		}
		if a.Op != b.Op {
			return a.Op - b.Op
		}
		if a.Mode != b.Mode {
			return modeRank(a.Mode) - modeRank(b.Mode)
		}
		return int(a.Seed) - int(b.Seed)
	})
	return out, nil
}

// modeRank orders modes as a sweep does.
func modeRank(name string) int {
	m, err := storage.ParseFaultMode(name)
	if err != nil {
		return 1 << 20
	}
	return int(m)
}
