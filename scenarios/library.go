package scenarios

import (
	"embed"
	"fmt"
	"path"
	"slices"
	"strings"
)

//go:embed library/*.yaml
var libraryFiles embed.FS

// Library returns the built-in scenarios, sorted by name. A built-in
// scenario that does not load is a bug in bootsim.
func Library() []*Loaded {
	entries, err := libraryFiles.ReadDir("library")
	if err != nil {
		panic(err)
	}
	var out []*Loaded
	for _, e := range entries {
		name := path.Join("library", e.Name())
		data, err := libraryFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		l, err := Load(name, data, nil)
		if err != nil {
			panic(fmt.Sprintf("scenarios: built-in %v", err))
		}
		if strings.TrimSuffix(e.Name(), ".yaml") != l.Name {
			panic(fmt.Sprintf("scenarios: %s names scenario %q", name, l.Name))
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *Loaded) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Find returns the built-in scenario with a name.
func Find(name string) (*Loaded, error) {
	for _, l := range Library() {
		if l.Name == name {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w %q (see 'bootsim list')", ErrNotFound, name)
}
