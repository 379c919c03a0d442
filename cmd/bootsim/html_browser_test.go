package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromium finds a Chromium or Chrome to drive, or skips the test saying
// how to get one (.ci/run installs the Debian package).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on this machine (apt-get install chromium; .ci/run does): the HTML report is not checked in a browser")
	return ""
}

// TestHTMLReportInABrowser opens the HTML report of an update flow and a
// crash loop in headless Chromium: the page loads with no console error or
// exception, shows each scenario with its timeline spans, its flash map
// (with what each region holds at the end) and its serial console, a click on a console line marks its moment on
// the timeline, and a screenshot is taken (kept in $BOOTSIM_SCREENSHOTS
// when it is set).
func TestHTMLReportInABrowser(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "report.html")
	var out, errOut bytes.Buffer
	code := run([]string{"run", "seed-update-flow", "crash-loop-recopy", "-q", "--html", report}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, exitOK, code, errOut.String())

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless,
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	var mu sync.Mutex
	var problems []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				problems = append(problems, "console "+string(e.Type))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		}
	}))

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("file://"+report)))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#summary"))))
	sections, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('section.scenario').length`))
	require.NoError(t, err)
	names, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('section.scenario')).map(s => s.dataset.name)`))
	require.NoError(t, err)
	spans, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#s0 .timeline .span').length`))
	require.NoError(t, err)
	serialLines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#s0 .serial a').length`))
	require.NoError(t, err)
	holds, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#s0 tr[data-region="active-app"] td:nth-child(3)').textContent`))
	require.NoError(t, err)
	lanes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#s0 .timeline .lane').length`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#s0 .serial a:nth-of-type(3)`))))
	highlighted, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function(){var a=document.querySelectorAll('#s0 .serial a')[2];return document.getElementById(a.dataset.tick).style.width})()`))
	require.NoError(t, err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: a PNG
	require.NoError(t, err)
	require.Equal(t, 2, sections)
	require.Equal(t, []string{"seed-update-flow", "crash-loop-recopy"}, names)
	require.GreaterOrEqual(t, spans, 8, "two boots of each stage and the install's four phases")
	require.Greater(t, serialLines, 20)
	require.Equal(t, "app-v2", holds, "the flash map says what the active region holds at the end")
	require.Equal(t, 7, lanes, "stages, install, phases, update client, milestones, console, storage ops")
	require.Equal(t, "3px", highlighted, "the clicked console line's moment is marked")
	require.Greater(t, len(shot), 10_000, "a screenshot of the page")
	mu.Lock()
	require.Empty(t, problems, "the page loads with no console error or exception")
	mu.Unlock()
	if d := os.Getenv("BOOTSIM_SCREENSHOTS"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "report.png"), shot, 0o644))
	}
}
