package scenarios

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const schemaFile = "testdata/scenario.schema.json"

// rewrite reports whether the test was run with -rewrite (the flag the
// datadriven tests of this package register): golden files are then
// written instead of compared.
func rewrite() bool {
	f := flag.Lookup("rewrite")
	return f != nil && f.Value.String() == "true"
}

// TestSchemaInSync: the committed schema is what the types generate. If
// this fails after a change to the scenario types, run
// "go test ./scenarios -run TestSchemaInSync -rewrite" and read the diff.
func TestSchemaInSync(t *testing.T) {
	got := Schema()
	if rewrite() {
		require.NoError(t, os.WriteFile(schemaFile, got, 0o644))
	}
	want, err := os.ReadFile(schemaFile)
	require.NoError(t, err)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Fatalf("the schema changed (-committed +generated); if intended, run with -rewrite:\n%s", diff)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource(SchemaID, doc))
	s, err := c.Compile(SchemaID)
	require.NoError(t, err)
	return s
}

// yamlToJSONValue converts YAML to the value a JSON decoder would give.
func yamlToJSONValue(t *testing.T, data []byte) any {
	var v any
	require.NoError(t, yaml.Unmarshal(data, &v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return out
}

// TestSchemaAcceptsLibrary: every built-in scenario is valid under the
// schema, and documents the loader rejects for their shape are invalid.
func TestSchemaAcceptsLibrary(t *testing.T) {
	s := compileSchema(t)
	for _, l := range Library() {
		require.NoError(t, s.Validate(yamlToJSONValue(t, l.Source)), l.Name)
	}
	for _, bad := range []string{
		strings.Replace(base, "summary:", "sumary:", 1),
		base + "  - reboot\n",
		base + "  - wait: {until: running-app}\n",
		base + "expect:\n  - runing: app-v2\n",
		strings.Replace(base, "board: k64f", "board: pico", 1),
		base + "  - reset: software\n",
	} {
		require.Error(t, s.Validate(yamlToJSONValue(t, []byte(bad))), bad)
	}
	for _, good := range []string{
		strings.Replace(base, "board: k64f", "board: K64F", 1),
		strings.Replace(base, "board: k64f", "board: boards/mine.yaml", 1),
	} {
		require.NoError(t, s.Validate(yamlToJSONValue(t, []byte(good))), good)
	}
}
