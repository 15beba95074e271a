package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
)

// Error is a refusal of the token service. It unwraps to an
// *errkind.Error whose Code is the OAuth error code ("invalid_client",
// "invalid_grant", "authorization_pending", …) and whose Msg is the public
// description; Error adds what only an OAuth surface needs.
type Error struct {
	e *errkind.Error
	// AADSTS is Entra ID's number for this error, or 0 where it has none.
	AADSTS int
	// RetryAfter is set when the request was throttled.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.e.Error() }

// Unwrap exposes the classified error to errkind.As and errors.Is.
func (e *Error) Unwrap() error { return e.e }

// newErr builds a refusal. The message is public: never pass a secret.
// With a number, the message starts "AADSTS<n>: " as Entra's do.
func newErr(k errkind.Kind, code string, aadsts int, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if aadsts != 0 {
		msg = fmt.Sprintf("AADSTS%d: %s", aadsts, msg)
	}
	return &Error{e: &errkind.Error{Kind: k, Code: code, Msg: msg}, AADSTS: aadsts}
}

// NewError builds a refusal for a surface that finds a fault before the
// service sees the request (a duplicated parameter, a secret in a URL), so
// that it reads like every other: msg is public and gets Entra ID's
// "AADSTS<n>: " prefix when aadsts is not 0.
func NewError(k errkind.Kind, code string, aadsts int, msg string) *Error {
	return newErr(k, code, aadsts, "%s", msg)
}

// withCause keeps an internal cause for the log.
func (e *Error) withCause(err error) *Error {
	c := *e.e
	c.Err = err
	return &Error{e: &c, AADSTS: e.AADSTS, RetryAfter: e.RetryAfter}
}

// Details returns the AADSTS number and the throttling delay of err, if it
// is (or wraps) an *Error.
func Details(err error) (aadsts int, retryAfter time.Duration) {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.AADSTS, e.RetryAfter
	}
	return 0, 0
}

// OAuth error codes this package returns in errkind.Error.Code.
const (
	CodeInvalidRequest          = "invalid_request"
	CodeInvalidClient           = "invalid_client"
	CodeInvalidGrant            = "invalid_grant"
	CodeUnauthorizedClient      = "unauthorized_client"
	CodeUnsupportedGrantType    = "unsupported_grant_type"
	CodeInvalidScope            = "invalid_scope"
	CodeInvalidResource         = "invalid_resource"
	CodeAuthorizationPending    = "authorization_pending"
	CodeSlowDown                = "slow_down"
	CodeExpiredToken            = "expired_token"
	CodeAccessDenied            = "access_denied"
	CodeTemporarilyUnavailable  = "temporarily_unavailable"
	CodeUnsupportedResponseType = "unsupported_response_type"
	CodeInvalidToken            = "invalid_token"
	CodeInvalidTenant           = "invalid_tenant"
)

// The one answer for a wrong secret and an unknown client: the same text,
// so that neither tells an attacker which part was wrong.
func errBadClientSecret() *Error {
	return newErr(errkind.Unauthenticated, CodeInvalidClient, 7000215,
		"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, and that the application exists in the directory.")
}

func errBadAssertion(reason string) *Error {
	return newErr(errkind.Unauthenticated, CodeInvalidClient, 700027, "Client assertion failed validation: %s.", reason)
}

func errBadPassword() *Error {
	return newErr(errkind.Unauthenticated, CodeInvalidGrant, 50126, "Error validating credentials due to invalid username or password.")
}

func errThrottled(wait time.Duration) *Error {
	secs := int((wait + time.Second - 1) / time.Second)
	e := newErr(errkind.TooManyRequests, CodeTemporarilyUnavailable, 50053,
		"Too many failed sign-in attempts. Further attempts are refused for %d seconds without being checked.", secs)
	e.RetryAfter = time.Duration(secs) * time.Second
	return e
}

func errMissingParam(name string) *Error {
	return newErr(errkind.Invalid, CodeInvalidRequest, 900144, "The request body must contain the following parameter: '%s'.", name)
}

func errInvalidToken(format string, args ...any) *Error {
	return newErr(errkind.Unauthenticated, CodeInvalidToken, 0, format, args...)
}
