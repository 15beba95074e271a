package graph

import (
	"errors"
	"net/http"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
)

// statusError is a failure only this surface produces and no error kind
// describes, such as a method the resource does not allow.
type statusError struct {
	status    int
	code, msg string
}

func (e *statusError) Error() string { return e.msg }

// graphCodes are the Graph codes this package sets itself on errkind
// errors, where the kind alone would pick a less precise one. Codes set
// by the directory (ApplicationNotFound, …) are domain reasons, not Graph
// codes, and are not passed through.
var graphCodes = map[string]bool{
	"BadRequest":               true, // syntax errors Graph reports without the Request_ prefix
	"Request_UnsupportedQuery": true,
}

// classify is the one place that maps failures to Graph statuses and codes.
func classify(err error) (status int, code string) {
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.status, se.code
	}
	k := errkind.KindOf(err)
	if e, ok := errkind.As(err); ok && graphCodes[e.Code] {
		return httpx.Status(k), e.Code
	}
	switch k {
	case errkind.Invalid, errkind.FailedPrecondition:
		return http.StatusBadRequest, "Request_BadRequest"
	case errkind.NotFound:
		return http.StatusNotFound, "Request_ResourceNotFound"
	case errkind.AlreadyExists:
		return http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue"
	case errkind.Conflict:
		return http.StatusConflict, "Conflict"
	case errkind.Unauthenticated:
		return http.StatusUnauthorized, "InvalidAuthenticationToken"
	case errkind.PermissionDenied:
		return http.StatusForbidden, "Authorization_RequestDenied"
	case errkind.TooManyRequests:
		return http.StatusTooManyRequests, "TooManyRequests"
	case errkind.TooLarge:
		return http.StatusRequestEntityTooLarge, "Request_EntityTooLarge"
	case errkind.Unavailable:
		return http.StatusServiceUnavailable, "serviceNotAvailable"
	default:
		return http.StatusInternalServerError, "generalException"
	}
}

// graphClientID is Microsoft Graph's own application id, which Graph names
// in its challenge.
const graphClientID = "00000003-0000-0000-c000-000000000000"

// renderer writes Graph's OData error:
//
//	{"error":{"code":"…","message":"…","innerError":{"date":"…","request-id":"…","client-request-id":"…"}}}
type renderer struct {
	now       func() time.Time
	publicURL string
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	InnerError innerError `json:"innerError"`
}

type innerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id,omitempty"`
}

func (rd renderer) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	msg := errkind.Public(err)
	if se, ok := errors.AsType[*statusError](err); ok {
		msg = se.msg
	}
	switch status {
	case http.StatusUnauthorized:
		// Graph's challenge, pointing at our authority so a client can
		// discover where to get a token.
		base := rd.publicURL
		if base == "" {
			scheme := "https"
			if r.TLS == nil {
				scheme = "http"
			}
			base = scheme + "://" + r.Host
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="`+base+
			`/common/oauth2/authorize", client_id="`+graphClientID+`"`)
	case http.StatusForbidden:
		// Graph's fixed sentence first, so scripts matching on it work;
		// the directory's reason (which names the roles that would allow
		// the change) after it, so a person knows what to ask for.
		msg = "Insufficient privileges to complete the operation. " + sentence(msg)
	}
	rid := httpx.RequestID(r.Context())
	if rid == "" {
		rid = w.Header().Get("x-ms-request-id")
	}
	if rid == "" {
		rid = httpx.NewRequestID()
	}
	w.Header().Set("request-id", rid)
	crid := r.Header.Get("client-request-id")
	if len(crid) > 128 {
		crid = ""
	}
	if crid != "" {
		w.Header().Set("client-request-id", crid)
	}
	body := errorBody{Error: errorDetail{Code: code, Message: msg, InnerError: innerError{
		Date: rd.now().UTC().Format("2006-01-02T15:04:05"), RequestID: rid, ClientRequestID: crid}}}
	_ = httpx.JSON(w, status, body)
}

// sentence capitalizes the first letter of msg, which follows a full stop.
func sentence(msg string) string {
	r, n := utf8.DecodeRuneInString(msg)
	if n == 0 {
		return msg
	}
	return string(unicode.ToUpper(r)) + msg[n:]
}
