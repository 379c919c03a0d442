package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed library/*.yaml library/boards/*.yaml library/configs/*.json
var libraryFiles embed.FS

// libraryFile reads a file a built-in scenario names (a board file),
// relative to the library's directory and inside it.
func libraryFile(name string) ([]byte, error) {
	p := path.Clean(path.Join("library", name))
	if !strings.HasPrefix(p, "library/") || !fs.ValidPath(p) {
		return nil, fmt.Errorf("%s: a built-in scenario names files inside the library only", name)
	}
	return libraryFiles.ReadFile(p)
}

// Library returns the built-in scenarios, sorted by name. A built-in
// scenario that does not load is a bug in bootsim.
func Library() []*Loaded {
	entries, err := libraryFiles.ReadDir("library")
	if err != nil {
		panic(err)
	}
	var out []*Loaded
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := path.Join("library", e.Name())
		data, err := libraryFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		l, err := Load(name, data, libraryFile)
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
