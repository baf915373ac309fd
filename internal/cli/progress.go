package cli

import (
	"fmt"

	"github.com/schollz/progressbar/v3"
)

// progress is the live bar of followed operations: items done of total,
// rate, ETA and failures so far. It exists only when a person watches
// (stdout and stderr are terminals); it draws on stderr so stdout keeps
// only the report.
type progress struct {
	bar    *progressbar.ProgressBar
	label  string
	failed int64
}

func (c *cli) newProgress(total int64, label string) *progress {
	if !c.out.interactive() {
		return nil
	}
	p := &progress{label: label}
	p.bar = progressbar.NewOptions64(max(total, 1),
		progressbar.OptionSetWriter(c.env.Err),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("items"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionEnableColorCodes(c.out.color),
		progressbar.OptionSetTheme(progressbar.Theme{Saucer: "=", SaucerHead: ">", SaucerPadding: " ", BarStart: "[", BarEnd: "]"}),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(c.env.Err) }),
	)
	return p
}

// update shows done (finished items, failed ones included) of total.
func (p *progress) update(total, done, failed int64) {
	if p == nil {
		return
	}
	if total > 0 && int64(p.bar.GetMax64()) != total {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
	if failed != p.failed {
		p.failed = failed
		p.bar.Describe(fmt.Sprintf("%s (%d failed)", p.label, failed))
	}
}

// finish completes the bar (or clears it when detaching).
func (p *progress) finish(completed bool) {
	if p == nil {
		return
	}
	if completed {
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Clear()
}
