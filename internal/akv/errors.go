package akv

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
)

// Body is Azure Key Vault's error format.
type Body struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	InnerError *innerBody `json:"innererror,omitempty"`
}

type innerBody struct {
	Code string `json:"code"`
}

// Codes AKV answers with, per kind; a domain error's own code becomes the
// innererror.
var kindCodes = map[errkind.Kind]string{
	errkind.Invalid:            "BadParameter",
	errkind.NotFound:           "KeyNotFound",
	errkind.AlreadyExists:      "Conflict",
	errkind.Conflict:           "Conflict",
	errkind.FailedPrecondition: "Forbidden",
	errkind.Unauthenticated:    "Unauthorized",
	errkind.PermissionDenied:   "Forbidden",
	errkind.TooManyRequests:    "Throttled",
	errkind.TooLarge:           "BadParameter",
	errkind.Unavailable:        "ServiceUnavailable",
	errkind.Internal:           "InternalServerError",
}

// topCodes are domain codes that AKV shows as the top-level code rather
// than as the inner one.
var topCodes = map[string]bool{"KeyNotFound": true, "VaultNotFound": true, "BadParameter": true}

// statusOf is AKV's status per kind: like the conventional one, except
// that a precondition the caller cannot fix by changing the request (a
// disabled subscription) is 403, and a too-large body is 400.
func statusOf(k errkind.Kind) int {
	switch k {
	case errkind.FailedPrecondition:
		return http.StatusForbidden
	case errkind.TooLarge:
		return http.StatusBadRequest
	}
	return httpx.Status(k)
}

// renderer writes errors in AKV's format; 401s carry the challenge.
type renderer struct{ a *API }

func (rd renderer) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	k := errkind.KindOf(err)
	b := Body{Error: errorBody{Code: kindCodes[k], Message: errkind.Public(err)}}
	if e, ok := errkind.As(err); ok && e.Code != "" && k != errkind.Internal {
		if topCodes[e.Code] {
			b.Error.Code = e.Code
		} else {
			b.Error.InnerError = &innerBody{Code: e.Code}
		}
	}
	if k == errkind.Unauthenticated {
		rd.a.challenge(w, r)
	}
	if k == errkind.TooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
	}
	_ = httpx.JSON(w, statusOf(k), b)
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
