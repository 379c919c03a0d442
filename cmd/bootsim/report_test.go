package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestJUnitIsWellFormed parses the JUnit report of a passing and a failing
// scenario with the same structure GitLab and Jenkins read.
func TestJUnitIsWellFormed(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`scenario: bad
summary: Expects the wrong state.
device: {board: k64f}
firmware:
  app-v1: {version: 1561517193, size: 100KiB}
factory: {active: app-v1}
steps:
  - power-on
  - wait: {until: app-running}
expect:
  - state: halted
`), 0o644))
	var out, errOut bytes.Buffer
	code := run([]string{"run", "clean-boot", bad, "-o", "junit"}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, exitFailed, code, errOut.String())
	require.True(t, strings.HasPrefix(out.String(), xml.Header))
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Tests int    `xml:"tests,attr"`
			Cases []struct {
				Name       string `xml:"name,attr"`
				Classname  string `xml:"classname,attr"`
				Time       string `xml:"time,attr"`
				Properties []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:"value,attr"`
				} `xml:"properties>property"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
				SystemOut string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(out.Bytes(), &doc))
	require.Equal(t, 2, doc.Tests)
	require.Equal(t, 1, doc.Failures)
	require.Len(t, doc.Suites, 1)
	cases := doc.Suites[0].Cases
	require.Len(t, cases, 2)
	require.Equal(t, "clean-boot", cases[0].Name)
	require.Equal(t, "bootsim.classic", cases[0].Classname)
	require.Nil(t, cases[0].Failure)
	require.Contains(t, cases[0].SystemOut, "Mbed Bootloader")
	// time is host seconds (CI shows it); the device's virtual time is a
	// property of its own.
	host, err := strconv.ParseFloat(cases[0].Time, 64)
	require.NoError(t, err)
	require.Less(t, host, 60.0)
	require.Equal(t, "virtual_time", cases[0].Properties[0].Name)
	require.Equal(t, "0.063820", cases[0].Properties[0].Value)
	require.Equal(t, "bad", cases[1].Name)
	require.NotNil(t, cases[1].Failure)
	require.Equal(t, "expected state halted: the device is running (application app-v1) after 1 boots", cases[1].Failure.Message)
	require.Contains(t, cases[1].Failure.Body, "replay: bootsim run "+bad)
}

// TestTraceIsChromeTraceJSON checks the --trace file has the structure
// Perfetto's JSON importer reads.
func TestTraceIsChromeTraceJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.json")
	var out, errOut bytes.Buffer
	code := run([]string{"run", "power-cut-during-copy-torn", "-q", "--trace", path}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, exitOK, code, errOut.String())
	require.Empty(t, out.String(), "-q prints nothing when everything passes")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc struct {
		TraceEvents []struct {
			Name string         `json:"name"`
			Ph   string         `json:"ph"`
			Ts   float64        `json:"ts"`
			Dur  *float64       `json:"dur"`
			Pid  int            `json:"pid"`
			Tid  int            `json:"tid"`
			Args map[string]any `json:"args"`
		} `json:"traceEvents"`
		DisplayTimeUnit string `json:"displayTimeUnit"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	phases := map[string]int{}
	var torn bool
	for _, e := range doc.TraceEvents {
		phases[e.Ph]++
		if e.Ph == "X" {
			require.NotNil(t, e.Dur, e.Name)
			require.GreaterOrEqual(t, *e.Dur, 0.0)
		}
		if f, ok := e.Args["fault"]; ok && strings.Contains(f.(string), "torn") {
			torn = true
		}
	}
	require.Positive(t, phases["M"], "metadata names the process and threads")
	require.Positive(t, phases["X"], "stages and storage ops are spans")
	require.Positive(t, phases["i"], "milestones are instants")
	require.True(t, torn, "the torn op is in the trace")

	// Spans nest on the stages thread: the body phase of the copy the cut
	// tore lies inside an install, which lies inside a bootloader stage.
	type span struct {
		name     string
		from, to float64
	}
	var stages, installs, bodies []span
	for _, e := range doc.TraceEvents {
		if e.Ph != "X" || e.Tid != 1 || e.Pid != 1 {
			continue
		}
		sp := span{e.Name, e.Ts, e.Ts + *e.Dur}
		switch {
		case strings.HasPrefix(e.Name, "bootloader: "):
			stages = append(stages, sp)
		case strings.HasPrefix(e.Name, "install "):
			installs = append(installs, sp)
		case e.Name == "body":
			bodies = append(bodies, sp)
		}
	}
	within := func(in span, outs []span) bool {
		for _, o := range outs {
			if in.from >= o.from && in.to <= o.to {
				return true
			}
		}
		return false
	}
	require.NotEmpty(t, bodies)
	require.NotEmpty(t, installs)
	for _, b := range bodies {
		require.True(t, within(b, installs), "body phase %v inside an install", b)
	}
	for _, i := range installs {
		require.True(t, within(i, stages), "install %v inside a bootloader stage", i)
	}
}
