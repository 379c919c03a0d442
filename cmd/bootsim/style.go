package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"
)

// globalFlags are the flags every command takes.
type globalFlags struct {
	color string
	quiet bool
}

func (g *globalFlags) register(root *cobra.Command) {
	root.PersistentFlags().StringVar(&g.color, "color", "auto", "colour output: auto, always or never (auto honours NO_COLOR and TERM=dumb)")
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "print only failures and problems")
	_ = root.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]string{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
}

func (g *globalFlags) check() error {
	switch g.color {
	case "auto", "always", "never":
		return nil
	}
	return usageErr("--color %q: want auto, always or never", g.color)
}

// useColor decides whether to colour output written to w: always and never
// win; auto colours a terminal unless NO_COLOR is set (to anything but the
// empty string) or TERM is dumb (no-color.org).
func (g *globalFlags) useColor(w io.Writer) bool {
	switch g.color {
	case "always":
		return true
	case "never":
		return false
	}
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(w)
}

// styles colour words of the text output, or leave them alone.
type styles struct{ on bool }

func (g *globalFlags) styles(w io.Writer) styles { return styles{on: g.useColor(w)} }

func (s styles) paint(code, text string) string {
	if !s.on {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s styles) pass(text string) string { return s.paint("32", text) }
func (s styles) fail(text string) string { return s.paint("1;31", text) }
func (s styles) weak(text string) string { return s.paint("33", text) }
