package scenarios

import (
	"encoding/json"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestTreeGolden pins every format of the boot-sequence tree of the
// depth-first and dead-end scenarios. After a change, run "go test
// ./scenarios -run TestTreeGolden -rewrite" and read the diff.
func TestTreeGolden(t *testing.T) {
	for _, name := range []string{"chain-depth-first", "chain-dead-end", "chain-bootloader-hang"} {
		l, err := Find(name)
		require.NoError(t, err)
		res, err := Run(l, Options{})
		require.NoError(t, err)
		require.True(t, res.Passed, "%v", res.Failures())
		tr, err := BootTree(l, res)
		require.NoError(t, err)
		js, err := json.MarshalIndent(tr, "", "  ")
		require.NoError(t, err)
		for ext, got := range map[string]string{"txt": TreeText(tr), "dot": TreeDOT(tr), "mmd": TreeMermaid(tr), "json": string(js) + "\n"} {
			path := filepath.Join("testdata", "tree", name+"."+ext)
			if rewrite() {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
				continue
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("%s is stale (-committed +now); if the change is understood, run with -rewrite:\n%s", path, d)
			}
		}
	}
}

// TestTreeDepthFirst: the path of the depth-first scenario is the tree's
// depth-first order, newest first at each level, each application tried
// for its attempts, and it ends where the first healthy pair runs.
func TestTreeDepthFirst(t *testing.T) {
	l, err := Find("chain-depth-first")
	require.NoError(t, err)
	res, err := Run(l, Options{})
	require.NoError(t, err)
	tr, err := BootTree(l, res)
	require.NoError(t, err)
	type step struct {
		bl, app string
		boots   int
	}
	var got []step
	for _, v := range tr.Path {
		got = append(got, step{v.Bootloader, v.Application, v.Boots})
	}
	require.Equal(t, []step{
		{"bl-v2", "app-v3", 3}, {"bl-v2", "app-v2", 3}, {"bl-v2", "app-v1", 3}, {"bl-v2", "", 1},
		{"bl-v1", "app-v3", 1},
	}, got)
	require.Equal(t, "app-v3 runs under bl-v1", tr.Outcome)
	require.True(t, tr.Path[len(tr.Path)-1].Confirmed)
	require.Equal(t, "version 2: no application left under it", tr.Bootloaders[0].Left)
	require.Empty(t, tr.Bootloaders[1].Left)
	classic, err := Find("clean-boot")
	require.NoError(t, err)
	_, err = BootTree(classic, res)
	require.ErrorContains(t, err, "chain profile")
}

// TestTreeDOTRenders: Graphviz accepts the DOT output and draws every
// node of the tree (.ci/run installs graphviz; without it the test fails
// rather than pass unseen, unless BOOTSIM_NO_GRAPHVIZ is set).
func TestTreeDOTRenders(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("BOOTSIM_NO_GRAPHVIZ") != "" {
			t.Skip("graphviz is not installed and BOOTSIM_NO_GRAPHVIZ is set")
		}
		t.Fatal("graphviz's dot is not installed (apt-get install graphviz, or set BOOTSIM_NO_GRAPHVIZ=1)")
	}
	l, err := Find("chain-depth-first")
	require.NoError(t, err)
	res, err := Run(l, Options{})
	require.NoError(t, err)
	tr, err := BootTree(l, res)
	require.NoError(t, err)
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = strings.NewReader(TreeDOT(tr))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	svg := html.UnescapeString(string(out))
	require.Contains(t, svg, "<svg")
	for _, n := range []string{"boot selector", "bl-v2", "bl-v1", "app-v3", "app-v1", "no application left under it"} {
		require.Contains(t, svg, n)
	}
}
