// Package errkind classifies domain errors by kind, never by HTTP status.
//
// Domain packages return *Error values (or wrap them); each API surface maps
// a Kind to its own status and error code in exactly one place. An Error
// separates the public message, which may be shown to the caller, from the
// internal cause, which is only logged. It imports nothing from this module.
package errkind

import (
	"errors"
	"fmt"
)

// Kind is the class of a failure.
type Kind uint8

// The kinds. Internal is the zero value so that an unclassified error is
// never mistaken for the caller's fault.
const (
	Internal           Kind = iota // a bug or an unexpected failure; details are never shown
	Invalid                        // the request is malformed or violates a rule
	NotFound                       // the named thing does not exist (or is hidden from the caller)
	AlreadyExists                  // a create collided with an existing name
	Conflict                       // the state does not allow the change now (version mismatch, busy)
	FailedPrecondition             // a prerequisite the caller must fix first is missing
	Unauthenticated                // no, or no valid, credential
	PermissionDenied               // authenticated but not allowed
	TooManyRequests                // throttled
	TooLarge                       // the request body or a field is too big
	Unavailable                    // a dependency is down; retrying may help
)

var names = [...]string{"internal", "invalid", "not_found", "already_exists", "conflict",
	"failed_precondition", "unauthenticated", "permission_denied", "too_many_requests", "too_large", "unavailable"}

func (k Kind) String() string {
	if int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is a classified error.
type Error struct {
	Kind Kind
	// Code is an optional, surface-neutral reason (for example
	// "ServicePrincipalNotFound") that an adapter may turn into its own code.
	Code string
	// Msg is safe to show to the caller. It never holds a secret.
	Msg string
	// Err is the internal cause, logged but never sent.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a public message.
func New(k Kind, msg string) *Error { return &Error{Kind: k, Msg: msg} }

// Errorf returns an error of kind k with a formatted public message. The
// arguments become part of what the caller sees: never pass a secret.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap classifies err with a public message; err stays internal.
func Wrap(k Kind, msg string, err error) *Error { return &Error{Kind: k, Msg: msg, Err: err} }

// WithCode returns a copy of e that carries code.
func (e *Error) WithCode(code string) *Error {
	c := *e
	c.Code = code
	return &c
}

// As returns the outermost *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	return errors.AsType[*Error](err)
}

// KindOf returns the kind of err: the kind of its outermost *Error, or
// Internal when it has none.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is classified as kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// Public returns the message that may be shown to the caller: the public
// message of the outermost *Error, or a generic text for anything else.
func Public(err error) string {
	if e, ok := As(err); ok && e.Kind != Internal {
		return e.Msg
	}
	return "an internal error occurred; the request id identifies it in the server log"
}
