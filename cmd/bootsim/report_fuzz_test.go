package main

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzReportInput: whatever file bootsim report is given, it renders a
// page or refuses it with exit 2; it never panics.
func FuzzReportInput(f *testing.F) {
	f.Add([]byte(`{"schema":"bootsim/run/v1","passed":1,"scenarios":[{"name":"a<b>","passed":true,"expectations":[{"text":"x","passed":false,"detail":"<i>"}]}]}`))
	f.Add([]byte(`{"schema":"bootsim/run/v1"}`))
	f.Add([]byte(`nope`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out, errOut bytes.Buffer
		code := run([]string{"report", "-"}, bytes.NewReader(data), &out, &errOut)
		switch code {
		case exitOK:
			if !strings.HasPrefix(out.String(), "<!DOCTYPE html>") {
				t.Fatalf("exit 0 without a page")
			}
			if strings.Contains(out.String(), "<b>") || strings.Contains(out.String(), "<i>") {
				t.Fatalf("report text reached the page unescaped")
			}
		case exitUsage:
		default:
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	})
}
