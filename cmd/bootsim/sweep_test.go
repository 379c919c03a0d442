package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestResolveShard: --shard wins; then Bazel (0-based), GitLab (1-based),
// Kubernetes (0-based, with --shard-total); bad values are usage errors.
func TestResolveShard(t *testing.T) {
	for _, tc := range []struct {
		flag  string
		total int
		env   map[string]string
		want  [2]int
		err   string
	}{
		{"", 0, nil, [2]int{1, 1}, ""},
		{"2/4", 0, map[string]string{"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}, [2]int{2, 4}, ""},
		{"", 0, map[string]string{"TEST_SHARD_INDEX": "0", "TEST_TOTAL_SHARDS": "3"}, [2]int{1, 3}, ""},
		{"", 0, map[string]string{"TEST_SHARD_INDEX": "2", "TEST_TOTAL_SHARDS": "3"}, [2]int{3, 3}, ""},
		{"", 0, map[string]string{"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2"}, [2]int{1, 2}, ""},
		{"", 5, map[string]string{"JOB_COMPLETION_INDEX": "4"}, [2]int{5, 5}, ""},
		{"", 0, map[string]string{"JOB_COMPLETION_INDEX": "0"}, [2]int{}, "--shard-total"},
		{"0/4", 0, nil, [2]int{}, "shard 0 of 4 from --shard"},
		{"5/4", 0, nil, [2]int{}, "shard 5 of 4"},
		{"1-4", 0, nil, [2]int{}, "want I/N"},
		{"a/4", 0, nil, [2]int{}, `--shard="a"`},
		{"", 0, map[string]string{"TEST_SHARD_INDEX": "3", "TEST_TOTAL_SHARDS": "3"}, [2]int{}, "shard 4 of 3 from Bazel"},
		{"", 0, map[string]string{"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "3"}, [2]int{}, "shard 0 of 3 from GitLab"},
		{"", 0, map[string]string{"CI_NODE_TOTAL": "x"}, [2]int{}, `CI_NODE_TOTAL="x"`},
	} {
		s, err := resolveShard(tc.flag, tc.total, func(k string) string { return tc.env[k] })
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, "%+v", tc)
			continue
		}
		require.NoError(t, err, "%+v", tc)
		require.Equal(t, tc.want, [2]int{s.index, s.total}, "%+v", tc)
	}
}

// TestShardsMergeToTheWhole: the shards of a sweep, merged, report exactly
// what the whole sweep reports.
func TestShardsMergeToTheWhole(t *testing.T) {
	dir := t.TempDir()
	stay := dir + "/stay.yaml"
	require.NoError(t, os.WriteFile(stay, []byte(`scenario: stay
summary: Installs app-v2 from the SD card; a recovery that has to copy again fails.
device: {board: k64f}
firmware:
  app-v1: {version: 1561517193, size: 100KiB}
  app-v2: {version: 1561520000, size: 120KiB}
factory: {active: app-v1, slots: [app-v2]}
steps:
  - power-on
  - wait: {until: {running: app-v2}}
sweep:
  expect:
    - no-event: copy-begin
`), 0o644))
	args := []string{"sweep", stay, "--modes", "after,torn", "--torn-seeds", "2", "--ops", "20..", "-o", "json"}
	sweep := func(extra ...string) []byte {
		var out, errb bytes.Buffer
		code := run(append(append([]string{}, args...), extra...), strings.NewReader(""), &out, &errb)
		require.Contains(t, []int{0, 1}, code, errb.String())
		return out.Bytes()
	}
	whole := map[string]any{}
	require.NoError(t, json.Unmarshal(sweep(), &whole))
	require.Greater(t, len(whole["failures"].([]any)), 10)
	var files []string
	for i := 1; i <= 3; i++ {
		f := dir + "/" + string(rune('0'+i)) + ".json"
		require.NoError(t, os.WriteFile(f, sweep("--shard", string(rune('0'+i))+"/3"), 0o644))
		files = append(files, f)
	}
	var out, errb bytes.Buffer
	code := run(append([]string{"sweep", "merge", "-o", "json"}, files...), strings.NewReader(""), &out, &errb)
	require.Contains(t, []int{0, 1}, code, errb.String())
	merged := map[string]any{}
	require.NoError(t, json.Unmarshal(out.Bytes(), &merged))
	require.Equal(t, []any{1.0, 2.0, 3.0}, merged["shards"])
	for _, k := range []string{"shards", "shard_total"} {
		delete(merged, k)
		delete(whole, k)
	}
	require.Equal(t, whole, merged)
}

// TestREADMECIExamples: the README's Kubernetes, GitLab and Bazel examples
// parse, split the sweep into the same number of shards the engine runs,
// and call bootsim sweep the way each engine's protocol needs.
func TestREADMECIExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```(yaml|python)\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	found := map[string]bool{}
	for _, b := range blocks {
		text := b[2]
		switch {
		case strings.HasPrefix(text, "# Kubernetes Indexed Job"):
			var job struct {
				Kind string
				Spec struct {
					CompletionMode string `yaml:"completionMode"`
					Completions    int
					Template       struct {
						Spec struct {
							Containers []struct{ Command []string }
						}
					}
				}
			}
			require.NoError(t, yaml.Unmarshal([]byte(text), &job))
			require.Equal(t, "Job", job.Kind)
			require.Equal(t, "Indexed", job.Spec.CompletionMode)
			cmd := job.Spec.Template.Spec.Containers[0].Command
			require.Contains(t, strings.Join(cmd, " "), "bootsim sweep")
			i := indexOf(cmd, "--shard-total")
			require.Positive(t, i)
			require.Equal(t, itoa(job.Spec.Completions), cmd[i+1], "--shard-total is the Job's completions")
			found["kubernetes"] = true
		case strings.HasPrefix(text, "# GitLab CI"):
			var ci map[string]struct {
				Parallel int
				Script   []string
			}
			require.NoError(t, yaml.Unmarshal([]byte(text), &ci))
			job := ci["sweep"]
			require.Greater(t, job.Parallel, 1)
			require.Contains(t, job.Script[0], "bootsim sweep")
			require.NotContains(t, job.Script[0], "--shard", "GitLab's variables pick the shard")
			found["gitlab"] = true
		case strings.HasPrefix(text, "# Bazel"):
			m := regexp.MustCompile(`(?s)sh_test\((.*)\)`).FindStringSubmatch(text)
			require.NotNil(t, m)
			require.Regexp(t, `shard_count = [2-9]`, m[1])
			require.Regexp(t, `args = \["sweep", "[a-z0-9-]+"\]`, m[1])
			found["bazel"] = true
		}
	}
	require.Equal(t, map[string]bool{"kubernetes": true, "gitlab": true, "bazel": true}, found)
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// FuzzSweepInputs: any --shard, --ops and --modes text and any report
// given to sweep merge is accepted or refused as a usage error, never a
// panic.
func FuzzSweepInputs(f *testing.F) {
	f.Add("2/4", "10..20", "before,torn", []byte(`{"schema":"bootsim/sweep/v1","scenario":"s","points":3,"shard_total":1,"shards":[1],"failures":[{"op":1,"mode":"torn"}]}`))
	f.Add("", "..5", "after", []byte(`{"schema":"bootsim/sweep/v1","shard_total":2,"shards":[1,2,2]}`))
	f.Add("9/x", "a..b", "sideways", []byte(`[]`))
	f.Fuzz(func(t *testing.T, shard, ops, modes string, report []byte) {
		isUsage := func(err error) {
			var ee *exitError
			if err != nil && (!errors.As(err, &ee) || ee.code != exitUsage) {
				t.Fatalf("not a usage error: %v", err)
			}
		}
		_, err := resolveShard(shard, 3, func(string) string { return "" })
		isUsage(err)
		_, _, err = parseOps(ops)
		isUsage(err)
		_, err = parseModes(modes)
		isUsage(err)
		var out, errb bytes.Buffer
		code := run([]string{"sweep", "merge", "-", "-o", "json"}, bytes.NewReader(report), &out, &errb)
		if code != 0 && code != 1 && code != 2 {
			t.Fatalf("sweep merge exited %d: %s", code, errb.String())
		}
	})
}
