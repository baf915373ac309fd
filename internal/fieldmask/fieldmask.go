// Package fieldmask normalizes update masks. REST clients may name fields in
// either JSON spelling (displayName or display_name), and the gateway
// derives the mask from whichever the body used; handlers compare against
// proto names only.
package fieldmask

import "strings"

// Paths returns the mask's paths in proto (snake_case) spelling.
func Paths(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		var b strings.Builder
		for _, r := range p {
			if r >= 'A' && r <= 'Z' {
				b.WriteByte('_')
				r += 'a' - 'A'
			}
			b.WriteRune(r)
		}
		out[i] = b.String()
	}
	return out
}
