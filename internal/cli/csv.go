package cli

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/labels"
)

// csvProblem is one bad spot of a CSV file, by line.
type csvProblem struct {
	Line int
	Msg  string
}

// csvErr reports every problem of a file as a usage error (exit 2).
func csvErr(file string, problems []csvProblem) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s), nothing was sent:", file, len(problems))
	for _, p := range problems {
		fmt.Fprintf(&b, "\n  line %d: %s", p.Line, p.Msg)
	}
	return usageErr(b.String())
}

// csvRecord is one data row with its line number and cells by column.
type csvRecord struct {
	line  int
	cells map[string]string
}

// readCSV reads an RFC 4180 file with a header row (UTF-8, with or without
// a BOM). Every column must be one of known; required ones must be there.
// Rows whose cells are all empty are skipped (spreadsheets append them).
func readCSV(data []byte, known, required []string) ([]csvRecord, []csvProblem) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	r := csv.NewReader(bytes.NewReader(data))
	r.TrimLeadingSpace = true
	r.ReuseRecord = false
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, []csvProblem{{1, fmt.Sprintf("the file is empty: want a header row with %s", strings.Join(known, ", "))}}
	}
	if err != nil {
		return nil, []csvProblem{parseProblem(err, 1)}
	}
	var problems []csvProblem
	cols := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		cols[i] = h
		switch {
		case !contains(known, h):
			problems = append(problems, csvProblem{1, fmt.Sprintf("unknown column %q (columns: %s)", h, strings.Join(known, ", "))})
		case seen[h]:
			problems = append(problems, csvProblem{1, fmt.Sprintf("column %q appears twice", h)})
		}
		seen[h] = true
	}
	for _, req := range required {
		if !seen[req] {
			problems = append(problems, csvProblem{1, fmt.Sprintf("missing column %q", req)})
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	var out []csvRecord
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// FieldPos is only defined for a record read without error.
			problems = append(problems, parseProblem(err, 0))
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				continue // the reader goes on with the next row
			}
			break
		}
		line, _ := r.FieldPos(0)
		cells := map[string]string{}
		empty := true
		for i, v := range rec {
			v = strings.TrimSpace(v)
			cells[cols[i]] = v
			empty = empty && v == ""
		}
		if !empty {
			out = append(out, csvRecord{line: line, cells: cells})
		}
	}
	if len(out) == 0 && len(problems) == 0 {
		problems = append(problems, csvProblem{1, "no rows after the header"})
	}
	return out, problems
}

func parseProblem(err error, line int) csvProblem {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return csvProblem{pe.StartLine, "wrong number of cells (the header has a different count)"}
		}
		return csvProblem{pe.Line, pe.Err.Error()}
	}
	return csvProblem{line, err.Error()}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// importRow is one workspace of `workspaces import`.
type importRow struct {
	line        int
	id          string // the {workspace} of its name
	displayName string
	apiKey      string
	labels      map[string]string
}

var apiKeyRE = regexp.MustCompile(`^[!-~]{8,512}$`)

// parseImportCSV validates a whole import file: columns workspace_id,
// display_name, api_key, labels (k=v;k=v). It never echoes a key.
func parseImportCSV(data []byte) ([]importRow, []csvProblem) {
	recs, problems := readCSV(data, []string{"workspace_id", "display_name", "api_key", "labels"}, []string{"workspace_id", "api_key"})
	if recs == nil {
		return nil, problems
	}
	var out []importRow
	byID, byKey := map[string]int{}, map[string]int{}
	for _, rec := range recs {
		bad := func(format string, a ...any) {
			problems = append(problems, csvProblem{rec.line, fmt.Sprintf(format, a...)})
		}
		row := importRow{line: rec.line, id: rec.cells["workspace_id"], displayName: rec.cells["display_name"], apiKey: rec.cells["api_key"]}
		ok := true
		switch {
		case row.id == "":
			bad("workspace_id is empty")
			ok = false
		case !workspaceIDRE.MatchString(row.id):
			bad("workspace_id %q: want 1-63 of [a-z0-9-], starting and ending alphanumeric", row.id)
			ok = false
		case byID[row.id] != 0:
			bad("workspace_id %q repeats line %d", row.id, byID[row.id])
			ok = false
		default:
			byID[row.id] = rec.line
		}
		if row.displayName == "" {
			row.displayName = row.id
		} else if len(row.displayName) > 200 {
			bad("display_name is longer than 200 characters")
			ok = false
		}
		switch {
		case row.apiKey == "":
			bad("api_key is empty")
			ok = false
		case !apiKeyRE.MatchString(row.apiKey):
			bad("api_key must be 8-512 printable ASCII characters without spaces")
			ok = false
		case byKey[row.apiKey] != 0:
			bad("api_key is the same as line %d's (an Instantly workspace is registered once)", byKey[row.apiKey])
			ok = false
		default:
			byKey[row.apiKey] = rec.line
		}
		lbls, msg := parseLabelCell(rec.cells["labels"])
		if msg != "" {
			bad("%s", msg)
			ok = false
		}
		row.labels = lbls
		if ok {
			out = append(out, row)
		}
	}
	return out, problems
}

// parseLabelCell reads "k=v;k=v" and checks the label rules.
func parseLabelCell(cell string) (map[string]string, string) {
	out := map[string]string{}
	if cell == "" {
		return out, ""
	}
	for part := range strings.SplitSeq(cell, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Sprintf("labels: %q is not key=value (separate labels with ;)", part)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, dup := out[k]; dup {
			return nil, fmt.Sprintf("labels: key %q appears twice", k)
		}
		out[k] = v
	}
	if vs := labels.Violations(out); len(vs) > 0 {
		return nil, "labels: " + vs[0].Error()
	}
	return out, ""
}

// person is one row of an onboarding file.
type person struct {
	line        int
	email       string
	role        agencyv1.MemberRole
	permissions []string
}

// emailRE is the WHATWG (HTML) form of an email address, the shape
// agencyd's own validation accepts.
var emailRE = regexp.MustCompile("^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")

func validEmail(s string) bool { return len(s) <= 320 && emailRE.MatchString(s) }

// parseRole reads a role as Instantly names them, any case.
func parseRole(s string) (agencyv1.MemberRole, string) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "admin":
		return agencyv1.MemberRole_MEMBER_ROLE_ADMIN, ""
	case "editor":
		return agencyv1.MemberRole_MEMBER_ROLE_EDITOR, ""
	case "view":
		return agencyv1.MemberRole_MEMBER_ROLE_VIEW, ""
	case "":
		return 0, "role is empty (admin, editor or view)"
	case "owner":
		return 0, "role owner cannot be given by invitation (ownership moves with TransferOwnership)"
	case "client":
		return 0, "role client is not available through Instantly's API"
	case "viewer":
		return 0, `role "viewer" does not exist: Instantly calls it "view"`
	}
	return 0, fmt.Sprintf("role %q does not exist (admin, editor or view)", s)
}

// roleName is a MemberRole as Instantly spells it.
func roleName(r agencyv1.MemberRole) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "MEMBER_ROLE_"))
}

// parsePermissions reads "a;b;c".
func parsePermissions(cell string) ([]string, string) {
	var out []string
	seen := map[string]bool{}
	for p := range strings.SplitSeq(cell, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !instantly.ValidPermission(p) {
			return nil, fmt.Sprintf("permission %q is not one of Instantly's (e.g. campaigns.view, leads.move)", p)
		}
		if seen[p] {
			return nil, fmt.Sprintf("permission %q appears twice", p)
		}
		seen[p] = true
		out = append(out, p)
	}
	if len(out) > 64 {
		return nil, "more than 64 permissions"
	}
	return out, ""
}

// parsePeopleCSV validates a whole onboarding file: columns email, role,
// permissions (;-separated, may be empty).
func parsePeopleCSV(data []byte) ([]person, []csvProblem) {
	recs, problems := readCSV(data, []string{"email", "role", "permissions"}, []string{"email", "role"})
	if recs == nil {
		return nil, problems
	}
	var out []person
	byEmail := map[string]int{}
	for _, rec := range recs {
		bad := func(format string, a ...any) {
			problems = append(problems, csvProblem{rec.line, fmt.Sprintf(format, a...)})
		}
		p := person{line: rec.line, email: rec.cells["email"]}
		ok := true
		key := strings.ToLower(p.email)
		switch {
		case p.email == "":
			bad("email is empty")
			ok = false
		case !validEmail(p.email):
			bad("email %q is not an email address", p.email)
			ok = false
		case byEmail[key] != 0:
			bad("%s repeats line %d (one row per person)", p.email, byEmail[key])
			ok = false
		default:
			byEmail[key] = rec.line
		}
		role, msg := parseRole(rec.cells["role"])
		if msg != "" {
			bad("%s", msg)
			ok = false
		}
		p.role = role
		perms, msg := parsePermissions(rec.cells["permissions"])
		if msg != "" {
			bad("%s", msg)
			ok = false
		}
		p.permissions = perms
		if ok {
			out = append(out, p)
		}
	}
	return out, problems
}
