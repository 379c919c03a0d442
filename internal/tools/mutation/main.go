// Command mutation measures how many bugs the tests catch, two ways:
//
//	go run ./internal/tools/mutation report PKG=FILE.json ...
//	    summarises gremlins' JSON reports (one per package): killed, lived,
//	    timed out and not covered mutants per package and per file, and
//	    every mutant that was not killed with the line it changes.
//	go run ./internal/tools/mutation seeded [-run REGEXP] FILE
//	    puts each hand-written bug of FILE into a copy of the tree, runs
//	    go test ./... there, and reports which bugs no test caught.
//
// scripts/mutation runs both; TESTING.md records the results. It is a
// developer's tool: it reads and writes files and runs commands, which the
// simulator's packages never do.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "report":
		err = report(os.Stdout, os.Args[2:])
	case "seeded":
		err = seeded(os.Stdout, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mutation report PKG=FILE.json ... | mutation seeded [-run REGEXP] FILE")
	os.Exit(2)
}

// gremlinsReport is the part of gremlins' JSON output (-o) this tool reads.
type gremlinsReport struct {
	Files []fileReport `json:"files"`
}

type fileReport struct {
	FileName  string     `json:"file_name"`
	Mutations []mutation `json:"mutations"`
}

type mutation struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// counts tallies mutants by gremlins status.
type counts map[string]int

func (c counts) add(o counts) {
	for k, v := range o {
		c[k] += v
	}
}

// detected counts killed and timed-out mutants: a mutant that makes the
// tests run past their timeout is caught, as a CI job's timeout would.
func (c counts) detected() int { return c["KILLED"] + c["TIMED OUT"] }

func (c counts) row(name string) string {
	tested := c.detected() + c["LIVED"]
	all := tested + c["NOT COVERED"]
	return fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %s | %s |", name, all, c["KILLED"], c["TIMED OUT"], c["LIVED"], c["NOT COVERED"],
		percent(c.detected(), tested), percent(tested, all))
}

func percent(a, b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f %%", 100*float64(a)/float64(b))
}

const tableHead = "| %s | mutants | killed | timed out | lived | not covered | score | covered |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"

// report prints the summary of gremlins reports given as PKG=FILE pairs.
func report(w io.Writer, args []string) error {
	if len(args) == 0 {
		return errors.New("report: give PKG=FILE.json pairs")
	}
	type survivor struct{ where, kind, status, line string }
	var (
		total     = counts{}
		pkgRows   []string
		fileRows  []string
		survivors []survivor
	)
	for _, a := range args {
		pkg, file, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("report: %q is not PKG=FILE.json", a)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var r gremlinsReport
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %v", file, err)
		}
		pc := counts{}
		slices.SortFunc(r.Files, func(a, b fileReport) int { return strings.Compare(a.FileName, b.FileName) })
		for _, f := range r.Files {
			fc := counts{}
			src := sourceLines(filepath.Join(pkg, f.FileName))
			muts := f.Mutations
			slices.SortFunc(muts, func(a, b mutation) int {
				if a.Line != b.Line {
					return a.Line - b.Line
				}
				if a.Column != b.Column {
					return a.Column - b.Column
				}
				return strings.Compare(a.Type, b.Type)
			})
			for _, m := range muts {
				fc[m.Status]++
				if m.Status == "LIVED" || m.Status == "NOT COVERED" {
					line := ""
					if m.Line-1 < len(src) {
						line = strings.TrimSpace(src[m.Line-1])
					}
					survivors = append(survivors, survivor{fmt.Sprintf("%s/%s:%d:%d", pkg, f.FileName, m.Line, m.Column), m.Type, m.Status, line})
				}
			}
			fileRows = append(fileRows, fc.row(pkg+"/"+f.FileName))
			pc.add(fc)
		}
		pkgRows = append(pkgRows, pc.row(pkg))
		total.add(pc)
	}
	fmt.Fprintf(w, tableHead, "package")
	for _, r := range pkgRows {
		fmt.Fprintln(w, r)
	}
	fmt.Fprintln(w, total.row("all"))
	fmt.Fprintf(w, "\n"+tableHead, "file")
	for _, r := range fileRows {
		fmt.Fprintln(w, r)
	}
	fmt.Fprintf(w, "\nMutants not killed (%d):\n\n", len(survivors))
	for _, s := range survivors {
		fmt.Fprintf(w, "- `%s` %s %s: `%s`\n", s.where, s.status, s.kind, s.line)
	}
	return nil
}

func sourceLines(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Split(string(data), "\n")
}

// bug is one hand-written bug: a literal replacement in one file.
type bug struct {
	name     string
	file     string
	old, new string
	at       int // line of the bug in the bugs file
}

// parseBugs reads the bugs file. Each bug is
//
//	## name of the bug
//	file: path/from/the/module/root.go
//	- old line (the lines to find, exactly once in the file)
//	+ new line (what they become; no + lines deletes them)
//
// Lines starting with "#" and a space, and blank lines, are comments.
func parseBugs(path string) ([]bug, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out      []bug
		cur      *bug
		old, neu []string
		n        int
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		if cur.name == "" {
			return fmt.Errorf("%s:%d: a bug needs a name after '## '", path, cur.at)
		}
		if cur.file == "" || len(old) == 0 {
			return fmt.Errorf("%s:%d: bug %q needs a file: line and - lines", path, cur.at, cur.name)
		}
		cur.old, cur.new = strings.Join(old, "\n"), strings.Join(neu, "\n")
		out = append(out, *cur)
		cur, old, neu = nil, nil, nil
		return nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			if err := flush(); err != nil {
				return nil, err
			}
			cur = &bug{name: strings.TrimSpace(line[3:]), at: n}
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "# "):
		case cur == nil:
			return nil, fmt.Errorf("%s:%d: expected a '## name' line", path, n)
		case strings.HasPrefix(line, "file: "):
			cur.file = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "- "), line == "-":
			old = append(old, strings.TrimPrefix(line[1:], " "))
		case strings.HasPrefix(line, "+ "), line == "+":
			neu = append(neu, strings.TrimPrefix(line[1:], " "))
		default:
			return nil, fmt.Errorf("%s:%d: unexpected line %q", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// applyBug replaces the bug's old lines, which must occur exactly once in
// its file, with its new lines.
func applyBug(root string, b bug) error {
	path := filepath.Join(root, b.file)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	src := string(data)
	if n := strings.Count(src, b.old); n != 1 {
		return fmt.Errorf("the lines of bug %q (line %d) occur %d times in %s (want once)", b.name, b.at, n, b.file)
	}
	return os.WriteFile(path, []byte(strings.Replace(src, b.old, b.new, 1)), 0o644)
}

var failRE = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)

// seeded runs every bug of a bugs file in its own copy of the tree.
func seeded(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("seeded", flag.ContinueOnError)
	run := fs.String("run", "", "only the bugs whose name matches this regular expression")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("seeded: give one bugs file")
	}
	bugs, err := parseBugs(fs.Arg(0))
	if err != nil {
		return err
	}
	var filter *regexp.Regexp
	if *run != "" {
		if filter, err = regexp.Compile(*run); err != nil {
			return err
		}
	}
	files, err := exec.Command("git", "ls-files").Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %v", err)
	}
	// The tests must pass on the tree as it is, or every bug would count
	// as caught.
	base, err := os.MkdirTemp("", "seeded-bug-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	if err := copyFiles(base, strings.Fields(string(files))); err != nil {
		return err
	}
	if out, err := goTest(base); err != nil {
		return fmt.Errorf("the tests fail without any bug:\n%s", out)
	}
	survived, invalid, ran := 0, 0, 0
	for _, b := range bugs {
		if filter != nil && !filter.MatchString(b.name) {
			continue
		}
		ran++
		dir, err := os.MkdirTemp("", "seeded-bug-")
		if err != nil {
			return err
		}
		if err := copyFiles(dir, strings.Fields(string(files))); err != nil {
			return err
		}
		if err := applyBug(dir, b); err != nil {
			os.RemoveAll(dir)
			return err
		}
		start := time.Now()
		out, err := goTest(dir)
		os.RemoveAll(dir)
		if broken := buildFailRE.FindString(string(out)); broken != "" {
			invalid++
			fmt.Fprintf(w, "INVALID   %s: the tree does not build with it (%s)\n", b.name, broken)
			continue
		}
		var fails []string
		for _, m := range failRE.FindAllStringSubmatch(string(out), -1) {
			if !strings.Contains(m[1], "/") && !slices.Contains(fails, m[1]) {
				fails = append(fails, m[1])
			}
		}
		switch {
		case err == nil:
			survived++
			fmt.Fprintf(w, "SURVIVED  %s (%s)\n", b.name, b.file)
		case len(fails) == 0:
			fmt.Fprintf(w, "caught    %s: %s\n", b.name, firstLine(string(out)))
		default:
			if len(fails) > 4 {
				fails = append(fails[:4], fmt.Sprintf("and %d more", len(fails)-4))
			}
			fmt.Fprintf(w, "caught    %s: %s (%s)\n", b.name, strings.Join(fails, ", "), time.Since(start).Round(time.Second))
		}
	}
	fmt.Fprintf(w, "\n%d bugs: %d caught, %d survived, %d invalid\n", ran, ran-survived-invalid, survived, invalid)
	if survived > 0 || invalid > 0 {
		return fmt.Errorf("%d seeded bugs survived, %d do not build", survived, invalid)
	}
	return nil
}

// buildFailRE finds a package that does not build: a bug must change
// behaviour, not break the build (which would count as caught).
var buildFailRE = regexp.MustCompile(`\S+ \[(build|setup) failed\]`)

// goTest runs the tests of the tree at dir. TestSeededBugsApply is
// skipped: it fails by design in a tree with a bug in it (the bug's lines
// are gone), which would make every bug look caught.
func goTest(dir string) ([]byte, error) {
	cmd := exec.Command("go", "test", "-timeout", "5m", "-skip", "^TestSeededBugsApply$", "./...")
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "FAIL") || strings.Contains(l, "error") || strings.Contains(l, ".go:") {
			return strings.TrimSpace(l)
		}
	}
	return "go test failed"
}

// copyFiles copies the named files (relative to the working directory)
// into dir.
func copyFiles(dir string, names []string) error {
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted in the working tree
			}
			return err
		}
		dst := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
