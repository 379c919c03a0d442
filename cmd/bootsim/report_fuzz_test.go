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
	f.Add([]byte(`{"schema":"bootsim/run/v1","passed":1,"scenarios":[{"name":"a","passed":true,"status":"pass","regions":[{"name":"r<b>","device":"internal","size":4096,"holds":"data","in_use":3,"erases":2}],` +
		`"flash_sectors":{"device":"internal","runs":[{"size":4096,"count":2}],"erases":[0,3]},` +
		`"timeline":{"end_ns":1000,"spans":[{"kind":"stage","name":"bootloader","detail":"<i>","from_ns":0,"to_ns":900}],"events":[{"kind":"mark","name":"x","at_ns":5}],"ops_per_bin":[0,2,-1]},` +
		`"console":[{"at_ns":3,"text":"<b>hi","device":true}],"recovery":{"boots":1,"timeline":{"end_ns":-1}}}]}`))
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
