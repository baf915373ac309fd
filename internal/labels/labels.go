// Package labels validates workspace labels and implements the label-selector
// grammar used to filter and scope workspaces.
//
// Labels follow a deliberately narrower form than Kubernetes: keys are
// lowercase and cannot carry a DNS prefix, so that a key has exactly one
// spelling and selectors never need case folding.
package labels

import (
	"fmt"
	"sort"
)

const (
	// MaxKeyLength is the maximum length of a label key in bytes.
	MaxKeyLength = 63
	// MaxValueLength is the maximum length of a label value in bytes.
	MaxValueLength = 63
	// MaxLabels is the maximum number of labels on one workspace.
	MaxLabels = 64
)

// FieldError describes one invalid field. Field and Description map directly
// onto a google.rpc.BadRequest.FieldViolation.
type FieldError struct {
	// Field is the offending field path, e.g. `labels` or `labels["Bad Key"]`.
	Field string
	// Description is a human-readable reason that never echoes the value.
	Description string
}

func (e *FieldError) Error() string {
	return e.Field + ": " + e.Description
}

func fieldForKey(k string) string {
	return fmt.Sprintf("labels[%q]", k)
}

// ValidateKey reports whether k is a valid label key. The returned error is a
// *FieldError whose Field is `labels["<k>"]`.
func ValidateKey(k string) error {
	if desc := keyProblem(k); desc != "" {
		return &FieldError{Field: fieldForKey(k), Description: desc}
	}
	return nil
}

// ValidateValue reports whether v is a valid label value. The returned error
// is a *FieldError whose Field is `labels` because the key is unknown here;
// Validate reports value errors against the key instead.
func ValidateValue(v string) error {
	if desc := valueProblem(v); desc != "" {
		return &FieldError{Field: "labels", Description: desc}
	}
	return nil
}

// Validate checks a whole label set. It returns the first violation in key
// order (so the result is deterministic) as a *FieldError; Violations returns
// all of them.
func Validate(m map[string]string) error {
	if vs := Violations(m); len(vs) > 0 {
		return vs[0]
	}
	return nil
}

// Violations returns every problem with a label set, ordered by key, with the
// label-count violation (if any) first. It returns nil for a valid set.
func Violations(m map[string]string) []*FieldError {
	var out []*FieldError
	if len(m) > MaxLabels {
		out = append(out, &FieldError{
			Field:       "labels",
			Description: fmt.Sprintf("at most %d labels are allowed, got %d", MaxLabels, len(m)),
		})
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if desc := keyProblem(k); desc != "" {
			out = append(out, &FieldError{Field: fieldForKey(k), Description: desc})
			continue
		}
		if desc := valueProblem(m[k]); desc != "" {
			out = append(out, &FieldError{Field: fieldForKey(k), Description: desc})
		}
	}
	return out
}

// keyProblem returns "" for a valid key or a description of what is wrong.
func keyProblem(k string) string {
	const rule = "must be 1-63 characters of lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
	switch {
	case k == "":
		return "label key must not be empty; it " + rule
	case len(k) > MaxKeyLength:
		return fmt.Sprintf("label key is %d characters long; it %s", len(k), rule)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if isLowerAlnum(c) {
			continue
		}
		if (c == '.' || c == '_' || c == '-') && i != 0 && i != len(k)-1 {
			continue
		}
		return "label key " + rule
	}
	return ""
}

// valueProblem returns "" for a valid value or a description of what is wrong.
func valueProblem(v string) string {
	const rule = "must be 0-63 characters of letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
	if len(v) > MaxValueLength {
		return fmt.Sprintf("label value is %d characters long; it %s", len(v), rule)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isAlnum(c) {
			continue
		}
		if (c == '.' || c == '_' || c == '-') && i != 0 && i != len(v)-1 {
			continue
		}
		return "label value " + rule
	}
	return ""
}

func isLowerAlnum(c byte) bool { return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') }

func isAlnum(c byte) bool { return isLowerAlnum(c) || ('A' <= c && c <= 'Z') }

// isNameChar reports whether c may appear inside a key or value token; the
// lexer reads maximal runs of these and validates the run afterwards so that
// errors name the whole offending word.
func isNameChar(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }
