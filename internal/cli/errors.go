package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes (documented in the README's Operators section).
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// exitError ends the command with code after printing msg (one line; ""
// prints nothing because a report already said it).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageErr is a usage error: exit 2, nothing was sent.
func usageErr(msg string) error { return &exitError{code: exitUsage, msg: msg} }

// failedErr is a failure whose report is already printed, or a one-line one.
func failedErr(msg string) error { return &exitError{code: exitFailed, msg: msg} }

// failure turns any error of a call to agencyd into one line for people:
// which address failed and why, never a Go error chain or the token.
func (c *cli) failure(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return failedErr(fmt.Sprintf("no answer from %s within %s (--timeout)", c.addrForMsg(), c.timeout))
	}
	st, ok := status.FromError(err)
	if !ok {
		return failedErr(err.Error())
	}
	return failedErr(c.statusLine(st))
}

func (c *cli) addrForMsg() string {
	if c.ep != nil {
		return c.ep.addr
	}
	return "agencyd"
}

// dialDetail pulls the useful end ("connect: connection refused") out of
// grpc's transport error text.
var dialDetail = regexp.MustCompile(`(dial tcp [^"]*|tls: [^"]*|x509: [^"]*|name resolver error: [^"]*)`)

func (c *cli) statusLine(st *status.Status) string {
	addr := c.addrForMsg()
	msg := st.Message()
	info := errorInfo(st.Proto())
	switch st.Code() {
	case codes.Unavailable:
		if info == nil { // the transport, not agencyd, failed
			if m := dialDetail.FindString(msg); m != "" {
				msg = strings.TrimRight(m, `\ `)
			}
			return fmt.Sprintf("cannot reach %s: %s", addr, msg)
		}
	case codes.DeadlineExceeded:
		return fmt.Sprintf("no answer from %s within %s (--timeout)", addr, c.timeout)
	case codes.Unauthenticated:
		return fmt.Sprintf("%s refused the credentials: %s (check --token-file, AGENCY_TOKEN or the context)", addr, msg)
	case codes.PermissionDenied:
		if info == nil || info.GetReason() == "PERMISSION_DENIED" {
			return "permission denied: " + msg
		}
	case codes.Canceled:
		return "interrupted"
	}
	return statusText(st.Proto())
}

// statusText renders a google.rpc.Status in one line: the code, the
// message, the reason and every field violation.
func statusText(st *spb.Status) string {
	if st == nil {
		return ""
	}
	// codes.Code.String gives CamelCase names: split them into words.
	code := strings.ToLower(camelWords(codes.Code(st.GetCode()).String()))
	var b strings.Builder
	b.WriteString(code)
	if msg := st.GetMessage(); msg != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(msg))
	}
	if info := errorInfo(st); info != nil && info.GetReason() != "" && !strings.EqualFold(strings.ReplaceAll(info.GetReason(), "_", " "), code) {
		b.WriteString(" [" + info.GetReason() + "]")
	}
	for _, v := range fieldViolations(st) {
		if !strings.Contains(st.GetMessage(), v.GetDescription()) {
			b.WriteString("; " + v.GetField() + ": " + oneLine(v.GetDescription()))
		}
	}
	return b.String()
}

// reasonText is a short failure reason for report tables: the ErrorInfo
// reason (or the code) and the message.
func reasonText(st *spb.Status) string {
	if st == nil {
		return ""
	}
	reason := camelWords(codes.Code(st.GetCode()).String())
	if info := errorInfo(st); info != nil && info.GetReason() != "" {
		reason = info.GetReason()
	}
	msg := oneLine(st.GetMessage())
	if msg == "" {
		return reason
	}
	return reason + ": " + msg
}

func camelWords(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func errorInfo(st *spb.Status) *errdetails.ErrorInfo {
	for _, d := range st.GetDetails() {
		info := &errdetails.ErrorInfo{}
		if d.MessageIs(info) && d.UnmarshalTo(info) == nil {
			return info
		}
	}
	return nil
}

func fieldViolations(st *spb.Status) []*errdetails.BadRequest_FieldViolation {
	for _, d := range st.GetDetails() {
		br := &errdetails.BadRequest{}
		if d.MessageIs(br) && d.UnmarshalTo(br) == nil {
			return br.GetFieldViolations()
		}
	}
	return nil
}

// isCode reports whether err is a gRPC status with code.
func isCode(err error, code codes.Code) bool {
	st, ok := status.FromError(err)
	return ok && err != nil && st.Code() == code
}
