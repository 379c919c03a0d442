package scenarios

import (
	"fmt"
	"strings"
)

// Renderers of a boot-sequence tree. Each is a pure function of the tree.

// TreeText renders the tree for a terminal: the tree with each node's
// visits and why it was left, then the path in visit order.
func TreeText(t *Tree) string {
	var b strings.Builder
	fmt.Fprintf(&b, "boot-sequence tree of %s\n\n", t.Scenario)
	b.WriteString("boot selector\n")
	for i, bn := range t.Bootloaders {
		last := i == len(t.Bootloaders)-1
		branch, indent := "├── ", "│   "
		if last {
			branch, indent = "└── ", "    "
		}
		fmt.Fprintf(&b, "%s%s%s\n", branch, nodeLabel("bootloader", bn), nodeNotes(bn))
		for j, an := range bn.Children {
			br := "├── "
			if j == len(bn.Children)-1 {
				br = "└── "
			}
			fmt.Fprintf(&b, "%s%s%s%s\n", indent, br, nodeLabel("application", an), nodeNotes(an))
		}
	}
	b.WriteString("\npath, depth-first:\n")
	for _, v := range t.Path {
		app := v.Application
		if app == "" {
			app = "(no application)"
		}
		conf := ""
		if v.Confirmed {
			conf = ", confirmed"
		}
		fmt.Fprintf(&b, "%3d. %s → %s: %d boot%s%s, %s\n", v.N, v.Bootloader, app, v.Boots, plural(v.Boots), conf, v.End)
	}
	fmt.Fprintf(&b, "\noutcome: %s\n", t.Outcome)
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func nodeLabel(stage string, n *TreeNode) string {
	trial := ""
	if n.Trial {
		trial = ", on trial"
	}
	return fmt.Sprintf("%s (%s version %d%s)", n.Name, stage, n.Version, trial)
}

func nodeNotes(n *TreeNode) string {
	var parts []string
	if len(n.Visits) > 0 {
		vs := make([]string, len(n.Visits))
		for i, v := range n.Visits {
			vs[i] = fmt.Sprint(v)
		}
		parts = append(parts, "visit "+strings.Join(vs, ", "))
	} else {
		parts = append(parts, "not visited")
	}
	if n.Left != "" {
		parts = append(parts, "left: "+n.Left)
	}
	return "  [" + strings.Join(parts, "; ") + "]"
}

// treeID is a node's identifier in DOT and Mermaid: stage-safe names.
func treeID(parts ...string) string {
	return strings.NewReplacer("-", "_", ".", "_").Replace(strings.Join(parts, "__"))
}

// visitID is the id of the node a visit ran: the application's, or the
// bootloader's when it ran none.
func visitID(v *Visit) string {
	if v.Application != "" {
		return treeID("app", v.Bootloader, v.Application)
	}
	return treeID("bl", v.Bootloader)
}

// TreeDOT renders the tree as a Graphviz digraph: the path's edges are
// bold and numbered in visit order, visited nodes filled.
func TreeDOT(t *Tree) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %q {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n", t.Scenario)
	b.WriteString("  sel [label=\"boot selector\", shape=doubleoctagon];\n")
	for _, bn := range t.Bootloaders {
		id := treeID("bl", bn.Name)
		fmt.Fprintf(&b, "  %s [label=%q%s];\n", id, dotLabel(bn), dotFill(bn))
		fmt.Fprintf(&b, "  sel -> %s;\n", id)
		for _, an := range bn.Children {
			aid := treeID("app", bn.Name, an.Name)
			fmt.Fprintf(&b, "  %s [label=%q%s];\n", aid, dotLabel(an), dotFill(an))
			fmt.Fprintf(&b, "  %s -> %s;\n", id, aid)
		}
	}
	for _, v := range t.Path {
		fmt.Fprintf(&b, "  sel -> %s [style=bold, color=\"#c0392b\", label=\"%d\", constraint=false];\n", visitID(v), v.N)
	}
	fmt.Fprintf(&b, "  outcome [shape=note, label=%q];\n}\n", t.Outcome)
	return b.String()
}

func dotLabel(n *TreeNode) string {
	s := fmt.Sprintf("%s\nversion %d", n.Name, n.Version)
	if n.Trial {
		s += " (trial)"
	}
	if n.Left != "" {
		s += "\n" + n.Left
	}
	return s
}

func dotFill(n *TreeNode) string {
	switch {
	case n.Left != "":
		return ", style=filled, fillcolor=\"#f5b7b1\""
	case len(n.Visits) > 0:
		return ", style=filled, fillcolor=\"#abebc6\""
	}
	return ""
}

// TreeMermaid renders the tree as a Mermaid flowchart, to paste into
// Markdown: the path's steps are dotted, numbered edges.
func TreeMermaid(t *Tree) string {
	var b strings.Builder
	b.WriteString("flowchart TD\n  sel[\"boot selector\"]\n")
	for _, bn := range t.Bootloaders {
		id := treeID("bl", bn.Name)
		fmt.Fprintf(&b, "  %s[\"%s\"]\n  sel --> %s\n", id, mermaidLabel(bn), id)
		for _, an := range bn.Children {
			aid := treeID("app", bn.Name, an.Name)
			fmt.Fprintf(&b, "  %s[\"%s\"]\n  %s --> %s\n", aid, mermaidLabel(an), id, aid)
		}
	}
	for _, v := range t.Path {
		fmt.Fprintf(&b, "  sel -. \"%d\" .-> %s\n", v.N, visitID(v))
	}
	for _, bn := range t.Bootloaders {
		mermaidClass(&b, treeID("bl", bn.Name), bn)
		for _, an := range bn.Children {
			mermaidClass(&b, treeID("app", bn.Name, an.Name), an)
		}
	}
	b.WriteString("  classDef left fill:#f5b7b1\n  classDef visited fill:#abebc6\n")
	return b.String()
}

func mermaidLabel(n *TreeNode) string {
	s := fmt.Sprintf("%s<br/>version %d", n.Name, n.Version)
	if n.Trial {
		s += " (trial)"
	}
	if n.Left != "" {
		s += "<br/>" + strings.ReplaceAll(n.Left, "\"", "'")
	}
	return s
}

func mermaidClass(b *strings.Builder, id string, n *TreeNode) {
	switch {
	case n.Left != "":
		fmt.Fprintf(b, "  class %s left\n", id)
	case len(n.Visits) > 0:
		fmt.Fprintf(b, "  class %s visited\n", id)
	}
}
