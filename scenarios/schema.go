package scenarios

import (
	"encoding/json"
	"reflect"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/units"
	"github.com/invopop/jsonschema"
	orderedmap "github.com/pb33f/ordered-map/v2"
)

// SchemaID is the $id of the scenario schema.
const SchemaID = "https://bootsim.dev/schema/scenario/v1.json"

// Schema returns the JSON Schema of a scenario file, generated from the Go
// types (invopop/jsonschema) with hand-written schemas for the values that
// are a word or a one-key mapping (steps, conditions, expectations).
func Schema() []byte {
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		DoNotReference:             true,
	}
	r.Mapper = func(t reflect.Type) *jsonschema.Schema { return mapType(r, t) }
	s := r.Reflect(&Scenario{})
	s.ID = SchemaID
	s.Title = "bootsim scenario"
	s.Description = "A scenario: a device, its firmware and factory state, the steps to play and what must hold afterwards."
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(out, '\n')
}

func props(kv ...any) *orderedmap.OrderedMap[string, *jsonschema.Schema] {
	m := orderedmap.New[string, *jsonschema.Schema]()
	for i := 0; i < len(kv); i += 2 {
		m.Set(kv[i].(string), kv[i+1].(*jsonschema.Schema))
	}
	return m
}

// oneKey is the schema of a one-key mapping.
func oneKey(key string, value *jsonschema.Schema) *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object", Properties: props(key, value), Required: []string{key}, AdditionalProperties: jsonschema.FalseSchema}
}

func words(desc string, ws ...string) *jsonschema.Schema {
	var e []any
	for _, w := range ws {
		e = append(e, w)
	}
	return &jsonschema.Schema{Type: "string", Enum: e, Description: desc}
}

// The building blocks are functions, not shared values: the reflector
// writes field descriptions into the schemas it is given.
func str() *jsonschema.Schema     { return &jsonschema.Schema{Type: "string"} }
func integer() *jsonschema.Schema { return &jsonschema.Schema{Type: "integer", Minimum: "0"} }
func duration() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}
}
func size() *jsonschema.Schema {
	return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{{Type: "integer", Minimum: "0"}, {Type: "string"}}}
}
func timeBounds() *jsonschema.Schema {
	return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{duration(), {Type: "object",
		Properties: props("at-least", duration(), "at-most", duration()), AdditionalProperties: jsonschema.FalseSchema}}}
}

func bounds() *jsonschema.Schema {
	return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{
		{Type: "integer"},
		{Type: "object", Properties: props("at-least", &jsonschema.Schema{Type: "integer"}, "at-most", &jsonschema.Schema{Type: "integer"}), AdditionalProperties: jsonschema.FalseSchema},
	}}
}

func mapType(r *jsonschema.Reflector, t reflect.Type) *jsonschema.Schema {
	inline := func(v any) *jsonschema.Schema {
		s := r.Reflect(v)
		s.Version, s.ID = "", ""
		return s
	}
	switch t {
	case reflect.TypeFor[BoardRef]():
		return &jsonschema.Schema{Description: "A built-in board, its Mbed target name, or the path of a board file of your own (bootsim boards --show k64f > myboard.yaml).",
			AnyOf: []*jsonschema.Schema{words("", append(sim.BoardNames(), sim.MbedTargets()...)...), {Type: "string", Pattern: `[/\\]|\.ya?ml$`}}}
	case reflect.TypeFor[units.Size]():
		return size()
	case reflect.TypeFor[units.Duration]():
		return duration()
	case reflect.TypeFor[FirmwareSet]():
		return &jsonschema.Schema{Type: "object", Description: "Firmware images by name.",
			PropertyNames:        &jsonschema.Schema{Pattern: `^[a-z0-9]+(-[a-z0-9]+)*$`},
			AdditionalProperties: inline(&Firmware{})}
	case reflect.TypeFor[ProfileVariants]():
		nameSchema := words("", ProfileNames()...)
		return &jsonschema.Schema{Type: "object", Description: "Other update designs the scenario makes sense under, each with what must hold there.",
			PropertyNames: nameSchema,
			AdditionalProperties: &jsonschema.Schema{OneOf: []*jsonschema.Schema{{Type: "null"}, {
				Type: "object",
				Properties: props("not-applicable", &jsonschema.Schema{Type: "string", Description: "Why the scenario does not make sense under this profile (alone)."}, "device", inline(&Device{}), "firmware", mapType(r, reflect.TypeFor[FirmwareSet]()), "factory", inline(&Factory{}),
					"expect", &jsonschema.Schema{Type: "array", Items: mapType(r, reflect.TypeFor[Expect]())}),
				AdditionalProperties: jsonschema.FalseSchema,
			}}}}
	case reflect.TypeFor[ConfigMap]():
		return &jsonschema.Schema{Type: "object", Description: "Configuration keys and their values.",
			AdditionalProperties: size()}
	case reflect.TypeFor[Condition]():
		return conditionSchema()
	case reflect.TypeFor[Step]():
		return stepSchema(inline)
	case reflect.TypeFor[Authorization]():
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{words("", "grant", "deny"), oneKey("delay", duration())}}
	case reflect.TypeFor[SourceSpec]():
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{words("A source kind.", "lwm2m", "http"), {
			Type: "object",
			Properties: props("name", str(), "kind", words("", "lwm2m", "http"), "cost", integer(),
				"fails", &jsonschema.Schema{Type: "boolean"}, "busy", integer()),
			Required:             []string{"kind"},
			AdditionalProperties: jsonschema.FalseSchema,
		}}}
	case reflect.TypeFor[Expect]():
		return expectSchema(inline)
	}
	return nil
}

// conditionSchema is the JSON schema of a wait condition.
func conditionSchema() *jsonschema.Schema {
	return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
		words("A state to wait for.", CondAppRunning, CondHalted, CondOff, CondLockedUp),
		oneKey(CondEvent, str()), oneKey(CondRunning, str()), oneKey(CondBoots, integer()),
		oneKey(CondSerial, str()), oneKey(CondState, str()),
	}}
}

// attackSchema is the JSON schema of an attack step's value.
func attackSchema() *jsonschema.Schema {
	return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
		words("An attack on the device's state: SOTP, or the chain's boot record.", stateAttacks...),
		{Type: "object", Properties: props("plant", str(), "header", words("", "device", "forged")), Required: []string{"plant"}, AdditionalProperties: jsonschema.FalseSchema},
		{Type: "object", Properties: props("truncate", size()), Required: []string{"truncate"}, AdditionalProperties: jsonschema.FalseSchema},
	}}
}
