package oauthapi

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
)

// errorBody is Entra ID's OAuth error shape.
type errorBody struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	Timestamp     string `json:"timestamp"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
}

// entraTime is the timestamp format of Entra ID's error bodies.
const entraTime = "2006-01-02 15:04:05Z"

// oauthRenderer is the one place OAuth errors are rendered: it picks the
// status and the OAuth error code from the error's kind and code.
type oauthRenderer struct {
	svc *identity.Service
}

// RenderError writes err in Entra ID's shape.
func (o oauthRenderer) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := o.body(r, err)
	setRetryAfter(w, err)
	_ = httpx.JSON(w, status, body)
}

// setRetryAfter tells a throttled client how long to wait, in seconds.
func setRetryAfter(w http.ResponseWriter, err error) {
	if _, wait := identity.Details(err); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	}
}

// body builds the status and body for err.
func (o oauthRenderer) body(r *http.Request, err error) (int, errorBody) {
	code, status := classify(err)
	n, _ := identity.Details(err)
	trace := httpx.RequestID(r.Context())
	if trace == "" {
		trace = httpx.NewRequestID()
	}
	corr := correlationID(r, trace)
	ts := o.svc.Now().UTC().Format(entraTime)
	codes := []int{}
	if n != 0 {
		codes = append(codes, n)
	}
	return status, errorBody{
		Error:         code,
		Description:   errkind.Public(err) + "\r\nTrace ID: " + trace + "\r\nCorrelation ID: " + corr + "\r\nTimestamp: " + ts,
		ErrorCodes:    codes,
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: corr,
	}
}

// classify maps an error to its OAuth error code and HTTP status. OAuth
// says 400 for every error but invalid_client (401); throttling is 429
// with Retry-After; an unknown tenant in discovery is 404; a body over the
// limit is 413; failures of ours are 5xx.
func classify(err error) (string, int) {
	e, ok := errkind.As(err)
	kind, code := errkind.Internal, ""
	if ok {
		kind, code = e.Kind, e.Code
	}
	status := http.StatusBadRequest
	switch kind {
	case errkind.TooLarge:
		status = http.StatusRequestEntityTooLarge
	case errkind.TooManyRequests:
		status = http.StatusTooManyRequests
	case errkind.NotFound:
		status = http.StatusNotFound
	case errkind.Unavailable:
		status = http.StatusServiceUnavailable
	case errkind.Internal:
		status = http.StatusInternalServerError
	}
	if code == identity.CodeInvalidClient {
		status = http.StatusUnauthorized
	}
	if code == "" {
		switch kind {
		case errkind.TooManyRequests, errkind.Unavailable:
			code = identity.CodeTemporarilyUnavailable
		case errkind.Internal:
			code = "server_error"
		default:
			code = identity.CodeInvalidRequest
		}
	}
	return code, status
}

var correlationRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// correlationID echoes the client's request id (MSAL sends
// client-request-id) when it is well formed, else the trace id.
func correlationID(r *http.Request, trace string) string {
	for _, h := range []string{"client-request-id", "x-ms-client-request-id"} {
		if v := r.Header.Get(h); correlationRE.MatchString(v) {
			return v
		}
	}
	return trace
}
