// Package httpx holds the HTTP plumbing shared by every API surface: routes
// that declare their body limit and timeout, handlers that return errors
// rendered once by the surface's Renderer, request ids, and strict JSON and
// form decoding. It knows no surface's error format. It imports only
// errkind and audit from this module.
package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
)

// HandlerFunc is a handler that returns its failure instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Renderer writes an error in one surface's format. It is called at most
// once per request, and only when the handler has not written a response.
type Renderer interface {
	RenderError(w http.ResponseWriter, r *http.Request, err error)
}

// Defaults for routes that do not set their own limits.
const (
	DefaultMaxBody = 1 << 20
	DefaultTimeout = 30 * time.Second
)

// Route binds a handler to its limits and its surface's renderer.
type Route struct {
	H       HandlerFunc
	R       Renderer
	Log     *slog.Logger
	MaxBody int64         // 0 means DefaultMaxBody
	Timeout time.Duration // 0 means DefaultTimeout
}

// ServeHTTP applies the limits, runs the handler and renders its error.
func (rt Route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	maxBody, timeout := rt.MaxBody, rt.Timeout
	if maxBody == 0 {
		maxBody = DefaultMaxBody
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := withDeadline(r.Context(), time.Now().Add(timeout))
	defer cancel()
	r = r.WithContext(ctx)
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	rw := &recorder{ResponseWriter: w}
	err := rt.H(rw, r)
	if err == nil {
		return
	}
	if errkind.KindOf(err) == errkind.Internal && rt.Log != nil {
		rt.Log.ErrorContext(ctx, "request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", RequestID(ctx), "err", err)
	}
	if rw.wrote {
		return
	}
	rt.R.RenderError(rw, r, err)
}

// recorder remembers whether the handler started a response, so that an
// error returned after a partial write is logged but not rendered twice.
type recorder struct {
	http.ResponseWriter
	wrote bool
}

func (r *recorder) WriteHeader(code int) { r.wrote = true; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Status is the conventional HTTP status of a kind. Surfaces may use it or
// choose their own; either way they choose in one place.
func Status(k errkind.Kind) int {
	switch k {
	case errkind.Invalid:
		return http.StatusBadRequest
	case errkind.NotFound:
		return http.StatusNotFound
	case errkind.AlreadyExists, errkind.Conflict:
		return http.StatusConflict
	case errkind.FailedPrecondition:
		return http.StatusBadRequest
	case errkind.Unauthenticated:
		return http.StatusUnauthorized
	case errkind.PermissionDenied:
		return http.StatusForbidden
	case errkind.TooManyRequests:
		return http.StatusTooManyRequests
	case errkind.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errkind.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// RequestID returns the id given to this request by WithRequestID.
func RequestID(ctx context.Context) string { return audit.MetaFrom(ctx).RequestID }

// NewRequestID returns a random GUID-shaped id, the shape Azure uses.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// Correlation headers in canonical form: WithRequestID runs on every
// request, and indexing the header map directly spares canonicalizing
// constant names each time.
const (
	hdrRequestID        = "X-Ms-Request-Id"
	hdrClientRequestID  = "X-Ms-Client-Request-Id"
	hdrClientRequestAlt = "Client-Request-Id"
)

// WithRequestID gives every request an id, returns it in x-ms-request-id
// and echoes the client's correlation id, as Azure services do.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := NewRequestID()
		h := w.Header()
		h[hdrRequestID] = []string{id}
		for _, k := range [...]string{hdrClientRequestID, hdrClientRequestAlt} {
			if v := r.Header[k]; len(v) > 0 && v[0] != "" && len(v[0]) <= 128 {
				h[k] = []string{v[0]}
			}
		}
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		next.ServeHTTP(w, r.WithContext(audit.WithMeta(r.Context(), audit.Meta{RequestID: id, ClientIP: ip})))
	})
}

// Errors returned by the decoders.
var (
	ErrBodyTooLarge     = errkind.New(errkind.TooLarge, "the request body is too large")
	ErrWrongContentType = errkind.New(errkind.Invalid, "the request body must be JSON (Content-Type: application/json)")
)

// DecodeJSON reads exactly one JSON value from the body into v, refusing
// unknown fields, trailing data and a body over the route's limit.
func DecodeJSON(r *http.Request, v any) error { return decodeJSON(r, v, true) }

// DecodeJSONLenient is DecodeJSON for surfaces whose clients send fields of
// newer API versions (Resource Manager): unknown fields are ignored.
func DecodeJSONLenient(r *http.Request, v any) error { return decodeJSON(r, v, false) }

func decodeJSON(r *http.Request, v any, strict bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return ErrWrongContentType
		}
	}
	if r.Body == nil {
		return errkind.New(errkind.Invalid, "the request body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(r.Body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return errkind.New(errkind.Invalid, "the request body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return ErrBodyTooLarge
	}
	if errors.Is(err, io.EOF) {
		return errkind.New(errkind.Invalid, "the request body is empty; a JSON object is required")
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return errkind.Errorf(errkind.Invalid, "the request body is not valid JSON (at byte %d)", se.Offset)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return errkind.Errorf(errkind.Invalid, "the field %q must be of JSON type %s", te.Field, jsonType(te.Type.Kind().String()))
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return errkind.Errorf(errkind.Invalid, "the request body has an unknown field %s", strings.TrimPrefix(msg, "json: unknown field "))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errkind.New(errkind.Invalid, "the request body is truncated JSON")
	}
	return errkind.Wrap(errkind.Invalid, "the request body is not valid JSON", err)
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	default:
		return "number"
	}
}

// ParseForm parses an application/x-www-form-urlencoded body within the
// route's limit.
func ParseForm(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method == http.MethodPost && (err != nil || mt != "application/x-www-form-urlencoded") {
		return errkind.New(errkind.Invalid, "the request body must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return ErrBodyTooLarge
		}
		return errkind.Wrap(errkind.Invalid, "the request body is not a valid form", err)
	}
	return nil
}

// JSON writes v with the given status.
func JSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("httpx: encoding response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// BearerToken returns the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	return tok, tok != ""
}
