package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// printer writes human tables or machine documents (-o json|yaml, with the
// proto JSON field names REST uses, so scripts see one spelling).
type printer struct {
	out, err io.Writer
	format   string // "", "json" or "yaml"
	color    bool   // ANSI colours: stdout is a terminal and NO_COLOR is unset
	ttyOut   bool
	ttyErr   bool
	ttyIn    bool
}

func newPrinter(env Env, format string) *printer {
	p := &printer{out: env.Out, err: env.Err, format: format,
		ttyOut: isTerminal(env.Out), ttyErr: isTerminal(env.Err), ttyIn: isTerminal(env.In)}
	// https://no-color.org: any non-empty NO_COLOR turns colour off.
	p.color = p.ttyOut && env.Getenv("NO_COLOR") == "" && env.Getenv("TERM") != "dumb"
	return p
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// machine reports whether -o json|yaml was asked for.
func (p *printer) machine() bool { return p.format != "" }

// interactive reports whether a person watches both streams: progress bars
// and prompts only then.
func (p *printer) interactive() bool { return p.ttyOut && p.ttyErr }

// protoRaw renders m as proto JSON (stable names, every field present).
func protoRaw(m proto.Message) (json.RawMessage, error) {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	return json.RawMessage(b), nil
}

// protoList renders ms as a JSON array of proto JSON objects.
func protoList[M proto.Message](ms []M) (json.RawMessage, error) {
	parts := make([]json.RawMessage, 0, len(ms))
	for _, m := range ms {
		raw, err := protoRaw(m)
		if err != nil {
			return nil, err
		}
		parts = append(parts, raw)
	}
	return json.Marshal(parts)
}

// doc writes v (anything encoding/json handles, json.RawMessage included)
// as indented JSON or as YAML.
func (p *printer) doc(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if p.format == "yaml" {
		y, err := yaml.JSONToYAML(buf.Bytes())
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = p.out.Write(y)
		return err
	}
	buf.WriteByte('\n')
	_, err = p.out.Write(buf.Bytes())
	return err
}

// proto writes one message as a machine document.
func (p *printer) proto(m proto.Message) error {
	raw, err := protoRaw(m)
	if err != nil {
		return err
	}
	return p.doc(raw)
}

// table writes aligned columns without borders, like kubectl.
func (p *printer) table(header []string, rows [][]string) {
	fmt.Fprint(p.out, renderTable(header, rows, p.color))
}

func renderTable(header []string, rows [][]string, color bool) string {
	up := make([]string, len(header))
	for i, h := range header {
		up[i] = strings.ToUpper(h)
	}
	return renderRawTable(up, rows, color)
}

// renderRawTable is renderTable with the header as given (workspace names
// as column titles keep their case).
func renderRawTable(header []string, rows [][]string, color bool) string {
	t := table.NewWriter()
	st := table.StyleDefault
	st.Options = table.OptionsNoBordersAndSeparators
	st.Box.PaddingLeft = ""
	st.Box.PaddingRight = "   "
	st.Format.Header = text.FormatDefault
	st.Format.HeaderAlign = text.AlignLeft
	if color {
		st.Color.Header = text.Colors{text.Bold}
	}
	t.SetStyle(st)
	hr := make(table.Row, len(header))
	for i, h := range header {
		hr[i] = h
	}
	t.AppendHeader(hr)
	for _, r := range rows {
		row := make(table.Row, len(r))
		for i, v := range r {
			row[i] = v
		}
		t.AppendRow(row)
	}
	var b strings.Builder
	for line := range strings.SplitSeq(t.Render(), "\n") {
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// fields writes "key: value" lines, aligned.
func (p *printer) fields(kv [][2]string) {
	width := 0
	for _, f := range kv {
		width = max(width, len(f[0]))
	}
	for _, f := range kv {
		fmt.Fprintf(p.out, "%-*s  %s\n", width+1, f[0]+":", f[1])
	}
}

// paint colours s when colour is on.
func (p *printer) paint(s string, colors ...text.Color) string {
	if !p.color || s == "" {
		return s
	}
	return text.Colors(colors).Sprint(s)
}

func (p *printer) red(s string) string    { return p.paint(s, text.FgRed) }
func (p *printer) green(s string) string  { return p.paint(s, text.FgGreen) }
func (p *printer) yellow(s string) string { return p.paint(s, text.FgYellow) }

// info writes a note for people on stderr (never mixed into -o output).
func (p *printer) info(format string, a ...any) {
	fmt.Fprintf(p.err, format+"\n", a...)
}
