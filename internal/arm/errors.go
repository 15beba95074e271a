package arm

import (
	"net/http"
	"net/url"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
)

// renderer writes ARM's error body {"error":{"code","message"}}; the
// status comes from the kind and the code from the domain's reason when it
// has one, otherwise from the kind.
type renderer struct{ publicURL string }

var kindCodes = map[errkind.Kind]string{
	errkind.Invalid:            "InvalidRequestContent",
	errkind.NotFound:           "ResourceNotFound",
	errkind.AlreadyExists:      "Conflict",
	errkind.Conflict:           "Conflict",
	errkind.FailedPrecondition: "BadRequest",
	errkind.Unauthenticated:    "InvalidAuthenticationToken",
	errkind.PermissionDenied:   "AuthorizationFailed",
	errkind.TooManyRequests:    "TooManyRequests",
	errkind.TooLarge:           "RequestEntityTooLarge",
	errkind.Unavailable:        "ServiceUnavailable",
	errkind.Internal:           "InternalServerError",
}

// codeMethodNotAllowed is the code of a known path asked with a method it
// does not serve; the renderer answers it with 405.
const codeMethodNotAllowed = "MethodNotAllowed"

// codeStatus holds the codes whose status ARM does not derive from their
// kind: a wrong method (no kind says so) and a write to a disabled
// subscription, a failed precondition that ARM answers with 409.
var codeStatus = map[string]int{
	codeMethodNotAllowed:           http.StatusMethodNotAllowed,
	"ReadOnlyDisabledSubscription": http.StatusConflict,
}

// Body is ARM's error format.
type Body struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (rd renderer) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	k := errkind.KindOf(err)
	var b Body
	b.Error.Code = kindCodes[k]
	if e, ok := errkind.As(err); ok && e.Code != "" && k != errkind.Internal {
		b.Error.Code = e.Code
	}
	b.Error.Message = errkind.Public(err)
	status := httpx.Status(k)
	if st, ok := codeStatus[b.Error.Code]; ok {
		status = st
	}
	w.Header().Set("x-ms-failure-cause", "gateway")
	if k == errkind.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+rd.publicURL+`/common/oauth2/authorize", error="invalid_token", error_description="`+
			url.PathEscape(b.Error.Code)+`"`)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	_ = httpx.JSON(w, status, b)
}

func pathUnescape(s string) (string, error) { return url.PathUnescape(s) }
