package sim

import (
	"errors"
	"net/http"
)

// Sentinel errors for the Go API; errors returned by it match them with errors.Is.
var (
	ErrNotFound = errors.New("sim: not found")
	ErrInvalid  = errors.New("sim: invalid input")
	ErrConflict = errors.New("sim: conflict")
)

// apiError is an error with the HTTP status Instantly would answer for it.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string { return http.StatusText(e.status) + ": " + e.message }

// Is lets Go callers test errors without knowing HTTP statuses.
func (e *apiError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.status == http.StatusNotFound
	case ErrInvalid:
		return e.status == http.StatusBadRequest
	case ErrConflict:
		return e.status == http.StatusConflict
	}
	return false
}

func newError(status int, message string) *apiError {
	return &apiError{status: status, message: message}
}

func errBadRequest(msg string) *apiError { return newError(http.StatusBadRequest, msg) }
func errUnauthorized(msg string) *apiError {
	return newError(http.StatusUnauthorized, msg)
}
func errNotFound() *apiError { return newError(http.StatusNotFound, "Resource not found") }

// errorBody is Instantly's error shape: exactly these three fields.
type errorBody struct {
	StatusCode int    `json:"statusCode"`
	Error      string `json:"error"`
	Message    string `json:"message"`
}

// errorResponse turns any error into Instantly's body; unknown errors become a bare 500 so no
// Go error text leaks to clients.
func errorResponse(err error) response {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = newError(http.StatusInternalServerError, "Internal Server Error")
	}
	return response{status: ae.status, body: errorBody{
		StatusCode: ae.status,
		Error:      http.StatusText(ae.status),
		Message:    ae.message,
	}}
}
