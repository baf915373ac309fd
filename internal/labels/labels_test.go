package labels

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"0", true},
		{"env", true},
		{"team.name", true},
		{"a_b-c.d", true},
		{"a1", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"Env", false},
		{"ENV", false},
		{"-a", false},
		{"a-", false},
		{".a", false},
		{"a.", false},
		{"_a", false},
		{"a b", false},
		{"a/b", false},
		{"example.com/team", false},
		{"a=b", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.key), func(t *testing.T) {
			err := ValidateKey(tt.key)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
			}
			if err == nil {
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not *FieldError", err)
			}
			if want := fmt.Sprintf("labels[%q]", tt.key); fe.Field != want {
				t.Errorf("Field = %q, want %q", fe.Field, want)
			}
			if fe.Description == "" {
				t.Error("empty Description")
			}
		})
	}
}

func TestValidateValue(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{"", true},
		{"a", true},
		{"Prod", true},
		{"PROD", true},
		{"v1.2.3", true},
		{"a_b-c.D", true},
		{strings.Repeat("Z", 63), true},
		{strings.Repeat("Z", 64), false},
		{"-a", false},
		{"a-", false},
		{".", false},
		{"a b", false},
		{"a,b", false},
		{"a/b", false},
		{"ü", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.value), func(t *testing.T) {
			err := ValidateValue(tt.value)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateValue(%q) = %v, want ok=%v", tt.value, err, tt.ok)
			}
			if err == nil {
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "labels" {
				t.Fatalf("error = %#v, want *FieldError with Field labels", err)
			}
		})
	}
}

func manyLabels(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		labels    map[string]string
		wantField string // "" means valid
		wantDesc  string // substring
	}{
		{"nil", nil, "", ""},
		{"empty", map[string]string{}, "", ""},
		{"good", map[string]string{"env": "prod", "tier": "", "team.x": "A-1"}, "", ""},
		{"max labels", manyLabels(64), "", ""},
		{"too many labels", manyLabels(65), "labels", "at most 64 labels"},
		{"bad key", map[string]string{"Bad Key": "x"}, `labels["Bad Key"]`, "label key"},
		{"bad value reported on key", map[string]string{"env": "no spaces"}, `labels["env"]`, "label value"},
		{"first in key order", map[string]string{"b": "-", "A": "x", "c": "ok"}, `labels["A"]`, "label key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.labels)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want *FieldError", err)
			}
			if fe.Field != tt.wantField || !strings.Contains(fe.Description, tt.wantDesc) {
				t.Errorf("got %+v, want Field %q and Description containing %q", fe, tt.wantField, tt.wantDesc)
			}
			if fe.Error() != fe.Field+": "+fe.Description {
				t.Errorf("Error() = %q", fe.Error())
			}
		})
	}
}

func TestViolationsReportsAll(t *testing.T) {
	m := manyLabels(64)
	m["Upper"] = "x"
	m["ok"] = "bad value"
	vs := Violations(m)
	var fields []string
	for _, v := range vs {
		fields = append(fields, v.Field)
	}
	want := []string{"labels", `labels["Upper"]`, `labels["ok"]`}
	if strings.Join(fields, "|") != strings.Join(want, "|") {
		t.Fatalf("Violations fields = %q, want %q", fields, want)
	}
}

func TestValueDescriptionDoesNotEchoValue(t *testing.T) {
	const secretish = "not a valid value at all"
	err := Validate(map[string]string{"k": secretish})
	if err == nil || strings.Contains(err.Error(), secretish) {
		t.Fatalf("Validate error %v should not echo the value", err)
	}
}
