package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bootsim/bootsim/scenarios"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"github.com/spf13/cobra"
)

// loadScenarios resolves run/validate arguments: "-" is standard input, an
// existing file or directory is read from disk (directories: every *.yaml
// and *.yml in it, sorted), anything else is a built-in scenario's name. No
// argument means the whole built-in library.
func loadScenarios(cmd *cobra.Command, args []string) ([]*scenarios.Loaded, error) {
	out, invalid, err := loadScenariosKeepGoing(cmd, args)
	if err == nil && len(invalid) > 0 {
		err = usageErr("%v", invalid[0].err)
	}
	return out, err
}

// invalidFile is a scenario file of a directory that did not load.
type invalidFile struct {
	file string
	err  error
}

// loadScenariosKeepGoing is loadScenarios for run: a file of a directory
// that does not load is returned beside the others instead of stopping
// them, so that the rest run and the report shows it.
func loadScenariosKeepGoing(cmd *cobra.Command, args []string) ([]*scenarios.Loaded, []invalidFile, error) {
	if len(args) == 0 {
		return scenarios.Library(), nil, nil
	}
	var out []*scenarios.Loaded
	var invalid []invalidFile
	for _, a := range args {
		switch fi, err := os.Stat(a); {
		case a == "-":
			data, err := readInput(cmd, "-", inScenario)
			if err != nil {
				return nil, nil, err
			}
			l, err := scenarios.Load(scenarios.StdinFile, data, fileReader("."))
			if err != nil {
				return nil, nil, usageErr("%v", err)
			}
			out = append(out, l)
		case err == nil && fi.IsDir():
			entries, err := os.ReadDir(a)
			if err != nil {
				return nil, nil, usageErr("%v", err)
			}
			n := 0
			for _, e := range entries {
				if e.IsDir() || (!strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".yml")) {
					continue
				}
				l, err := loadFile(filepath.Join(a, e.Name()))
				n++
				if err != nil {
					var ee *exitError
					if errors.As(err, &ee) && ee.code == exitUsage {
						invalid = append(invalid, invalidFile{filepath.Join(a, e.Name()), ee.err})
						continue
					}
					return nil, nil, err
				}
				out = append(out, l)
			}
			if n == 0 {
				return nil, nil, usageErr("%s: no scenario files (*.yaml) in the directory", a)
			}
		case err == nil:
			l, err := loadFile(a)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, l)
		default:
			l, ferr := scenarios.Find(a)
			if ferr != nil {
				return nil, nil, usageErr("%q is neither a built-in scenario nor a file or directory%s (see 'bootsim list')", a, closestScenario(a))
			}
			out = append(out, l)
		}
	}
	// Two scenarios of one name would be two test cases no report, replay
	// or --cut can tell apart. (The same scenario named twice runs twice:
	// that is how a run's independence from the one before is checked.)
	seen := map[string]string{}
	for _, l := range out {
		if prev, dup := seen[l.Name]; dup && prev != l.File {
			return nil, nil, usageErr("scenario %s is defined twice: in %s and in %s", l.Name, displayName(prev), displayName(l.File))
		}
		seen[l.Name] = l.File
	}
	return out, invalid, nil
}

func fileReader(dir string) scenarios.ReadFile {
	return func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, inFirmware.limit+1))
		if err == nil && int64(len(b)) > inFirmware.limit {
			err = fmt.Errorf("%s: larger than %d bytes, the limit for a %s", name, inFirmware.limit, inFirmware.what)
		}
		return b, err
	}
}

func loadFile(path string) (*scenarios.Loaded, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	defer f.Close()
	data, err := readLimited(f, path, inScenario)
	if err != nil {
		return nil, err
	}
	l, err := scenarios.Load(path, data, fileReader(filepath.Dir(path)))
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return l, nil
}

type runFlags struct {
	output    string
	seed      string
	serial    bool
	trace     string
	jsonFile  string
	junitFile string
	htmlFile  string
	tags      []string
	skipTags  []string
	failFast  bool
	cut       string
	faults    string
	maxBoots  int
	maxTime   string
	maxEvents int
	verbosity int
}

func newRunCmd(g *globalFlags) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [SCENARIO|FILE|DIR|- ...]",
		Short: "Run scenarios and check their expectations",
		Long: `Run scenarios on the simulated device and check their expectations and the
invariants (no-brick, authentic, no-downgrade, sotp-intact).

With no argument, the whole built-in library runs. An argument is the name
of a built-in scenario, a scenario file, a directory of them, or - for
standard input.

Output: one line per scenario (pass or fail, boots, virtual time, the
firmware running at the end); for a failure, the expectation that failed and
the end of the trace. -o json and -o junit give machine-readable reports
(virtual time, so the same scenario and seed give the same bytes).

Exit status: 0 all passed, 1 a scenario failed, 2 a scenario does not load.`,
		Example: `  bootsim run                                  # the whole library
  bootsim run power-cut-during-copy-torn --serial
  bootsim run my-scenarios/ -o junit > report.xml
  bootsim run my-scenarios/ --junit report.xml --json report.json   # and the console
  bootsim run install-from-sd --trace trace.json   # open in ui.perfetto.dev
  bootsim run install-from-sd --cut op=12,mode=torn,seed=7
  bootsim run --tag power-loss --skip-tag chain`,
		ValidArgsFunction: completeScenarios,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScenarios(cmd, g, f, args)
		},
	}
	fl := cmd.Flags()
	addOutputFlag(cmd, &f.output, "text|json|junit")
	fl.StringVar(&f.seed, "seed", "", "run with this seed instead of each scenario's")
	fl.BoolVar(&f.serial, "serial", false, "print the device's serial console with virtual timestamps")
	fl.StringVar(&f.trace, "trace", "", "write Chrome trace-event JSON (Perfetto) to this file")
	fl.StringArrayVar(&f.tags, "tag", nil, "run only the scenarios with this tag (repeat: any of them)")
	fl.StringArrayVar(&f.skipTags, "skip-tag", nil, "leave out the scenarios with this tag (repeat: any of them); applied after --tag")
	fl.StringVar(&f.jsonFile, "json", "", "also write the JSON report to this file (beside the -o output)")
	fl.StringVar(&f.junitFile, "junit", "", "also write the JUnit report to this file (beside the -o output)")
	fl.StringVar(&f.htmlFile, "html", "", "also write a self-contained HTML report to this file: per scenario its story, outcome, timeline, flash map and serial console")
	fl.BoolVar(&f.failFast, "fail-fast", false, "stop at the first failing scenario")
	fl.StringVar(&f.cut, "cut", "", "inject a fault for the whole run, e.g. op=1234,mode=torn,seed=7 (a sweep's replay)")
	fl.StringVar(&f.faults, "faults", "", "inject a fault schedule, rules separated by ';', link drops too (op=120,link-drop=5s): a random campaign's replay")
	fl.IntVar(&f.maxBoots, "max-boots", 0, fmt.Sprintf("fail a run that boots more often than this (a reset loop; default: the scenario's budget, else %d)", scenarios.DefaultMaxBoots))
	fl.StringVar(&f.maxTime, "max-time", "", fmt.Sprintf("fail a run that takes more virtual time than this, e.g. 48h (default: the scenario's budget, else %s)", scenarios.DefaultMaxTime))
	fl.IntVar(&f.maxEvents, "max-events", 0, fmt.Sprintf("fail a run that records more trace events than this (default: the scenario's budget, else %d)", scenarios.DefaultMaxEvents))
	fl.CountVarP(&f.verbosity, "verbose", "v", "show the trace's last 60 events, for passing scenarios too (-vv: all of it; a failure shows 15 without -v)")
	return cmd
}

func completeScenarios(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	var names []string
	for _, l := range scenarios.Library() {
		names = append(names, l.Name+"\t"+l.Summary)
	}
	return names, cobra.ShellCompDirectiveDefault
}

func runScenarios(cmd *cobra.Command, g *globalFlags, f runFlags, args []string) error {
	if err := checkOutput(f.output, "text", "json", "junit"); err != nil {
		return err
	}
	var opts scenarios.Options
	if f.seed != "" {
		s, err := strconv.ParseUint(f.seed, 10, 64)
		if err != nil {
			return usageErr("--seed %q: want a non-negative integer", f.seed)
		}
		opts.Seed = &s
	}
	if f.cut != "" {
		r, err := storage.ParseRule(f.cut)
		if err != nil {
			return usageErr("--cut: %v", err)
		}
		opts.Cut = r
	}
	if f.faults != "" {
		rules, drops, err := scenarios.ParseFaults(f.faults)
		if err != nil {
			return usageErr("--faults: %v", err)
		}
		opts.Faults, opts.LinkDrops = rules, drops
	}
	if cmd.Flags().Changed("max-boots") && (f.maxBoots < 1 || f.maxBoots > 10_000_000) {
		return usageErr("--max-boots %d: want 1 to 10000000", f.maxBoots)
	}
	opts.MaxBoots = f.maxBoots
	if cmd.Flags().Changed("max-events") && (f.maxEvents < 1 || f.maxEvents > 100_000_000) {
		return usageErr("--max-events %d: want 1 to 100000000", f.maxEvents)
	}
	opts.MaxEvents = f.maxEvents
	// The JSON and HTML reports say what each region holds at the end.
	opts.RegionContents = f.output == "json" || f.jsonFile != "" || f.htmlFile != ""
	if f.maxTime != "" {
		d, err := units.ParseDuration(f.maxTime)
		if err != nil || d <= 0 || d.D() > 100*365*24*time.Hour {
			return usageErr("--max-time %q: want a positive duration up to 100 years, e.g. 48h", f.maxTime)
		}
		opts.MaxTime = d.D()
	}
	list, invalid, err := loadScenariosKeepGoing(cmd, args)
	if err != nil {
		return err
	}
	if len(f.tags) > 0 || len(f.skipTags) > 0 {
		all := len(list)
		has := func(l *scenarios.Loaded, tags []string) bool {
			return slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(l.Tags, t) })
		}
		list = slices.DeleteFunc(list, func(l *scenarios.Loaded) bool {
			return (len(f.tags) > 0 && !has(l, f.tags)) || has(l, f.skipTags)
		})
		if len(list) == 0 && len(invalid) == 0 {
			return failed("no scenario left of %d: --tag %v --skip-tag %v", all, f.tags, f.skipTags)
		}
	}
	// Output files are opened before anything runs: a path that cannot
	// be written is the user's error, found at once.
	var traceFile *os.File
	if f.trace != "" {
		if traceFile, err = os.Create(f.trace); err != nil {
			return usageErr("--trace: %v", err)
		}
		defer traceFile.Close()
	}
	var jsonFile, junitFile, htmlFile *os.File
	for _, o := range []struct {
		flag, path string
		file       **os.File
	}{{"--json", f.jsonFile, &jsonFile}, {"--junit", f.junitFile, &junitFile}, {"--html", f.htmlFile, &htmlFile}} {
		if o.path == "" {
			continue
		}
		if *o.file, err = os.Create(o.path); err != nil {
			return usageErr("%s: %v", o.flag, err)
		}
		defer (*o.file).Close()
	}
	// A rule that names a device or region a scenario does not have
	// would never fire: refuse it before anything runs.
	for _, l := range list {
		for _, r := range append(append([]*storage.Rule{}, opts.Faults...), opts.Cut) {
			if r == nil {
				continue
			}
			if err := l.CheckRule(r); err != nil {
				return usageErr("%s: %s: %v", map[bool]string{true: "--cut", false: "--faults"}[r == opts.Cut], l.Name, err)
			}
		}
	}
	out := cmd.OutOrStdout()
	st := g.styles(out)
	if f.output == "text" {
		for _, bad := range invalid {
			fmt.Fprintf(out, "%s  %s\n      %v\n", st.fail("ERROR"), displayName(bad.file), bad.err)
		}
	}
	var results []*scenarios.Result
	hostTime := map[*scenarios.Result]time.Duration{}
	failedN := 0
	var internal []string // scenarios that could not run: a bug, reported after the others
	for _, l := range list {
		// The host time a scenario took goes into the JUnit report only:
		// CI systems read a test case's time as real seconds. Nothing else
		// a run prints depends on the wall clock.
		start := time.Now()
		res, err := scenarios.Run(l, opts)
		hostTime[res] = time.Since(start)
		if err != nil {
			internal = append(internal, fmt.Sprintf("%s: %v", l.Name, err))
			continue
		}
		results = append(results, res)
		if !res.Passed {
			failedN++
		}
		if f.output == "text" {
			if f.serial && len(results) == 1 {
				fmt.Fprint(out, serialLegend)
			}
			printResult(out, st, res, f, g.quiet)
		}
		if f.failFast && !res.Passed {
			break
		}
	}
	switch f.output {
	case "json":
		if err := writeJSON(out, runReport(list, results, invalid)); err != nil {
			return err
		}
	case "junit":
		if err := writeJUnit(out, results, invalid, hostTime); err != nil {
			return err
		}
	default:
		weak := 0
		for _, r := range results {
			if r.Status() == scenarios.StatusWeakness {
				weak++
			}
		}
		summary := fmt.Sprintf("%d scenario%s: %d passed, %d failed", len(results), plural(len(results)), len(results)-failedN, failedN)
		if weak > 0 {
			summary = fmt.Sprintf("%d scenario%s: %d passed (%d showing a known weakness), %d failed", len(results), plural(len(results)), len(results)-failedN, weak, failedN)
		}
		if len(invalid) > 0 {
			summary += fmt.Sprintf(", %d file%s invalid", len(invalid), plural(len(invalid)))
		}
		if failedN > 0 || len(invalid) > 0 {
			summary = st.fail(summary)
		}
		if !g.quiet || failedN > 0 || len(invalid) > 0 {
			fmt.Fprintln(out, summary)
		}
	}
	if jsonFile != nil {
		if err := writeJSON(jsonFile, runReport(list, results, invalid)); err != nil {
			return outputErr(f.jsonFile, err)
		}
		if err := jsonFile.Close(); err != nil {
			return outputErr(f.jsonFile, err)
		}
	}
	if htmlFile != nil {
		if _, err := io.WriteString(htmlFile, scenarios.HTMLReport(runReport(list, results, invalid))); err != nil {
			return outputErr(f.htmlFile, err)
		}
		if err := htmlFile.Close(); err != nil {
			return outputErr(f.htmlFile, err)
		}
	}
	if junitFile != nil {
		if err := writeJUnit(junitFile, results, invalid, hostTime); err != nil {
			return outputErr(f.junitFile, err)
		}
		if err := junitFile.Close(); err != nil {
			return outputErr(f.junitFile, err)
		}
	}
	if traceFile != nil {
		if err := scenarios.WriteChromeTrace(traceFile, results); err != nil {
			traceFile.Close()
			return outputErr(f.trace, err)
		}
		if err := traceFile.Close(); err != nil {
			return outputErr(f.trace, err)
		}
	}
	if len(internal) > 0 {
		return &exitError{code: exitInternal, err: fmt.Errorf("internal error (a bug in bootsim; the other scenarios' results are above): %s", strings.Join(internal, "; "))}
	}
	if len(invalid) > 0 {
		return usageErr("%d scenario file%s invalid (reported above; the others ran)", len(invalid), plural(len(invalid)))
	}
	if failedN > 0 {
		return failed("")
	}
	return nil
}

func printResult(w io.Writer, st styles, res *scenarios.Result, f runFlags, quiet bool) {
	if quiet && res.Passed {
		return
	}
	verdict := st.pass("PASS")
	switch res.Status() {
	case scenarios.StatusFail:
		verdict = st.fail("FAIL")
	case scenarios.StatusWeakness:
		verdict = st.weak("WEAK")
	}
	running := res.Running
	if running == "" {
		running = "(" + res.State + ")"
	}
	boots := fmt.Sprintf("%d boot%s", res.Boots, plural(res.Boots))
	fmt.Fprintf(w, "%s  %-34s %9s %12s  %s\n", verdict, res.Name, boots, fmtVirtual(res.VirtualTime), running)
	rec := res.Recovery
	if rec != nil {
		fmt.Fprintf(w, "      %s\n", recoveryLine(res))
	}
	if ws := res.Weaknesses(); res.Passed && len(ws) > 0 {
		fmt.Fprintf(w, "      known weakness shown: %s\n", strings.Join(ws, ", "))
	}
	if res.Error != "" && res.Cut != "" {
		fmt.Fprintf(w, "      step %d: %s (under injected faults the invariants judge the run)\n", res.Step, res.Error)
	}
	if f.serial {
		for _, line := range serialTranscript(res) {
			fmt.Fprintf(w, "      %s\n", line)
		}
		if rec != nil {
			fmt.Fprintf(w, "      ~~ recovery, from a new power-on (its clock starts at 0)\n")
			for _, line := range serialTranscript(rec) {
				fmt.Fprintf(w, "      %s\n", line)
			}
		}
	}
	for _, w2 := range res.Warnings {
		fmt.Fprintf(w, "      warning: %s\n", w2)
	}
	if res.Passed && f.verbosity == 0 {
		return
	}
	for _, why := range res.Failures() {
		fmt.Fprintf(w, "      %s\n", why)
	}
	// A failure shows the end of the trace; -v shows more of it, for a
	// passing scenario too, and -vv all of it.
	n := 15
	switch f.verbosity {
	case 1:
		n = 60
	case 2:
		n = -1
	}
	printTrace(w, "trace", res.Trace, n)
	if rec != nil {
		printTrace(w, "recovery trace", rec.Trace, n)
	}
	if !res.Passed {
		fmt.Fprintf(w, "      replay: %s\n", replayCommand(res))
	}
}

// serialLegend explains the serial transcript once, above the first one.
const serialLegend = `serial console: [virtual seconds since power-on] what the firmware printed;
~~ lines are what happened to the device (power, resets, faults), not output.
`

// recoveryLine says where a --cut cut power and how the device recovered.
func recoveryLine(res *scenarios.Result) string {
	rec := res.Recovery
	running := rec.Running
	if running == "" {
		running = "no application runs (" + rec.State + ")"
	}
	return fmt.Sprintf("cut %s, then recovery: %d boot%s, %s: %s", res.Cut, rec.Boots, plural(rec.Boots), fmtVirtual(rec.VirtualTime), running)
}

// printTrace prints the last n events of a trace (all if n < 0).
func printTrace(w io.Writer, label string, tr []sim.Event, n int) {
	if n < 0 {
		n = len(tr)
	}
	skip := max(0, len(tr)-n)
	more := "; -v for more"
	if skip == 0 {
		more = ""
	}
	fmt.Fprintf(w, "      %s (last %d of %d events%s):\n", label, len(tr)-skip, len(tr), more)
	for _, e := range tr[skip:] {
		fmt.Fprintf(w, "        %s\n", e)
	}
}

// serialTranscript is the serial console with virtual timestamps, and the
// power and reset events between its lines marked, as a bench log would
// show them.
func serialTranscript(res *scenarios.Result) []string {
	var out []string
	for _, c := range scenarios.Console(res.Trace) {
		out = append(out, fmt.Sprintf("[%s] %s", sim.FormatTime(time.Duration(c.AtNS)), c.Text))
	}
	return out
}

// replayCommand is the command line that plays a run again, with its
// serial console and whole trace.
func replayCommand(res *scenarios.Result) string {
	args := append([]string{"bootsim", "run"}, res.ReplayArgs()...)
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(append(args, "--serial", "-vv"), " ")
}

// shellQuote quotes a word for a POSIX shell, if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,:/@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fmtVirtual prints a virtual time in seconds with millisecond precision.
func fmtVirtual(d time.Duration) string {
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// runReport is the report of the runs and the files that did not load.
func runReport(list []*scenarios.Loaded, results []*scenarios.Result, invalid []invalidFile) scenarios.RunReport {
	rep := scenarios.NewRunReport(list, results, replayCommand)
	for _, bad := range invalid {
		rep.AddError(displayName(bad.file), bad.file, bad.err)
	}
	return rep
}

// JUnit XML, the subset GitLab and Jenkins read.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name       string          `xml:"name,attr"`
	Classname  string          `xml:"classname,attr"`
	File       string          `xml:"file,attr,omitempty"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitFailure   `xml:"failure,omitempty"`
	Error      *junitFailure   `xml:"error,omitempty"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// writeJUnit writes the JUnit report. A test case's time is the host
// seconds its run took (what CI systems show); the simulated device's
// virtual time is its virtual_time property.
func writeJUnit(w io.Writer, results []*scenarios.Result, invalid []invalidFile, hostTime map[*scenarios.Result]time.Duration) error {
	suite := junitSuite{Name: "bootsim", Properties: []junitProperty{{"time", "host seconds; virtual_time: virtual seconds of the simulated device"}}}
	var total time.Duration
	for _, r := range results {
		c := junitCase{Name: r.Name, Classname: "bootsim." + r.Profile, Time: fmt.Sprintf("%.3f", hostTime[r].Seconds()),
			Properties: []junitProperty{{"virtual_time", fmt.Sprintf("%.6f", r.VirtualTime.Seconds())}}}
		if !strings.HasPrefix(r.File, "library/") {
			c.File = r.File
		}
		c.SystemOut = strings.Join(serialTranscript(r), "\n") + "\n"
		// JUnit has no "passed, showing a weakness": a passing case
		// carries the weaknesses it showed as properties.
		for _, wk := range r.Weaknesses() {
			c.Properties = append(c.Properties, junitProperty{"weakness", wk})
		}
		if rec := r.Recovery; rec != nil {
			c.SystemOut += recoveryLine(r) + "\n~~ recovery, from a new power-on (its clock starts at 0)\n" +
				strings.Join(serialTranscript(rec), "\n") + "\n"
		}
		if !r.Passed {
			why := r.Failures()
			c.Failure = &junitFailure{Message: why[0], Type: "ExpectationFailed", Body: strings.Join(why, "\n") +
				"\nreplay: " + replayCommand(r) + "\n"}
			suite.Failures++
		}
		suite.Tests++
		total += hostTime[r]
		suite.Cases = append(suite.Cases, c)
	}
	for _, bad := range invalid {
		suite.Cases = append(suite.Cases, junitCase{Name: displayName(bad.file), Classname: "bootsim.invalid", File: bad.file, Time: "0.000000",
			Error: &junitFailure{Message: bad.err.Error(), Type: "InvalidScenario", Body: bad.err.Error() + "\n"}})
		suite.Tests++
		suite.Errors++
	}
	suite.Time = fmt.Sprintf("%.3f", total.Seconds())
	doc := junitSuites{Name: "bootsim", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func newListCmd() *cobra.Command {
	var output, tag string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the built-in scenarios",
		Long: `List the built-in scenarios, or those with a tag.

Exit status: 0 something listed, 1 no scenario has the tag (the message
suggests the closest tag), 2 bad flags.`,
		Example: `  bootsim list
  bootsim list --tag power-loss
  bootsim list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "text", "json"); err != nil {
				return err
			}
			type item struct {
				Name    string   `json:"name"`
				Summary string   `json:"summary"`
				Tags    []string `json:"tags"`
				Board   string   `json:"board"`
				Profile string   `json:"profile"`
			}
			var items []item
			for _, l := range scenarios.Library() {
				if tag != "" && !slices.Contains(l.Tags, tag) {
					continue
				}
				items = append(items, item{l.Name, l.Summary, l.Tags, l.Board.Name, l.Profile})
			}
			if len(items) == 0 && tag != "" {
				// Exit 1, like a search that finds nothing: a CI script that
				// lists a tag to run it learns the tag is misspelt.
				var tags []string
				for _, l := range scenarios.Library() {
					tags = append(tags, l.Tags...)
				}
				slices.Sort(tags)
				hint := ""
				if c := strictyaml.Closest(tag, slices.Compact(tags)); c != "" {
					hint = fmt.Sprintf(" (did you mean %q?)", c)
				}
				return failed("no built-in scenario has the tag %q%s", tag, hint)
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"schema": "bootsim/list/v1", "scenarios": items})
			}
			for _, it := range items {
				fmt.Fprintf(cmd.OutOrStdout(), "%-30s %s\n", it.Name, it.Summary)
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output, "text|json")
	cmd.Flags().StringVar(&tag, "tag", "", "only scenarios with this tag")
	return cmd
}

func newShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show SCENARIO",
		Short: "Print a scenario's YAML, to copy and edit",
		Long: `Print a built-in scenario's YAML, to copy and edit, or a scenario file's.

A scenario file that takes firmware from files (firmware: {app: {file:
app.bin}}) gets comment lines after it that say how bootsim treats each
binary: its true size and SHA-256 go into its headers and manifests, and it
runs as a healthy application whose code is not executed (bootsim runs the
update stack, not your firmware).`,
		Example: `  bootsim show power-cut-during-copy-torn > my-scenario.yaml
  bootsim show my-scenario.yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeScenarios,
		RunE: func(cmd *cobra.Command, args []string) error {
			ls, err := loadScenarios(cmd, args)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, l := range ls {
				if _, err := w.Write(l.Source); err != nil {
					return err
				}
				for _, b := range l.UserBinaries() {
					fmt.Fprintf(w, "# %s: %s, %d bytes, sha256 %x: its true size and hash go into its headers and manifests;\n", b.Firmware, b.File, b.Size, b.SHA256)
					fmt.Fprintf(w, "#   it runs as a healthy application, its code not executed (bootsim runs the update stack, not the firmware).\n")
				}
			}
			return nil
		},
	}
}

func newValidateCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE|DIR|SCENARIO|-]...",
		Short: "Check scenario files without running them",
		Long: `Check scenario files: YAML syntax, unknown or misspelt keys, types, and
meaning (unknown firmware, regions, boards, milestones). Errors are
file:line:col. It takes what run takes: files, directories (every *.yaml and
*.yml in them), built-in scenario names, - for standard input, and nothing
for the whole built-in library; every file is checked, and each invalid one
reported.

Exit status: 0 every file is valid, 2 otherwise.`,
		Example: `  bootsim validate my-scenario.yaml
  bootsim validate my-scenarios/
  bootsim validate seed-update-flow`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				for _, l := range scenarios.Library() {
					if !g.quiet {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (scenario %s, %d steps, %d expectations)\n", l.File, l.Name, len(l.Steps), len(l.Expect))
					}
				}
				return nil
			}
			var files []string
			for _, a := range args {
				if fi, err := os.Stat(a); err == nil && fi.IsDir() {
					entries, err := os.ReadDir(a)
					if err != nil {
						return usageErr("%v", err)
					}
					n := 0
					for _, e := range entries {
						if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
							files = append(files, filepath.Join(a, e.Name()))
							n++
						}
					}
					if n == 0 {
						return usageErr("%s: no scenario files (*.yaml) in the directory", a)
					}
					continue
				}
				files = append(files, a)
			}
			bad := 0
			for _, a := range files {
				var l *scenarios.Loaded
				var err error
				_, statErr := os.Stat(a)
				switch {
				case a == "-":
					var data []byte
					if data, err = readInput(cmd, "-", inScenario); err == nil {
						l, err = scenarios.Load(scenarios.StdinFile, data, fileReader("."))
					}
				case statErr != nil && !strings.ContainsAny(a, "/\\."):
					if l, err = scenarios.Find(a); err != nil {
						err = fmt.Errorf("%q is neither a file nor a built-in scenario%s (see 'bootsim list')", a, closestScenario(a))
					}
				default:
					l, err = loadFile(a)
				}
				if err != nil {
					var ee *exitError
					if errors.As(err, &ee) {
						err = ee.err
					}
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					bad++
					continue
				}
				if !g.quiet {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (scenario %s, %d steps, %d expectations)\n", displayName(a), l.Name, len(l.Steps), len(l.Expect))
				}
			}
			if bad > 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("%d of %d file%s invalid", bad, len(files), plural(len(files)))}
			}
			return nil
		},
	}
}

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of scenario files",
		Long: `Print the JSON Schema (draft 2020-12) of scenario files, generated from the
Go types the loader decodes into. Editors use it for completion and checks,
e.g. with the YAML language server:

  # yaml-language-server: $schema=./scenario.schema.json`,
		Example: `  bootsim schema > scenario.schema.json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(scenarios.Schema())
			return err
		},
	}
}

// closestScenario is a "did you mean" for a built-in scenario's name.
func closestScenario(name string) string {
	var names []string
	for _, l := range scenarios.Library() {
		names = append(names, l.Name)
	}
	if c := strictyaml.Closest(name, names); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}
