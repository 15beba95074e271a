package httpx_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
)

type body struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, ct, in string
		want         errkind.Kind // Internal: success
		msg          string
	}{
		{"ok", "application/json", `{"name":"a","count":2}`, errkind.Internal, ""},
		{"charset", "application/json; charset=utf-8", `{"name":"a"}`, errkind.Internal, ""},
		{"no content type", "", `{"name":"a"}`, errkind.Internal, ""},
		{"wrong content type", "text/plain", `{"name":"a"}`, errkind.Invalid, "Content-Type"},
		{"empty", "application/json", ``, errkind.Invalid, "empty"},
		{"syntax", "application/json", `{"name":`, errkind.Invalid, "truncated"},
		{"bad byte", "application/json", `{"name" "a"}`, errkind.Invalid, "not valid JSON"},
		{"unknown field", "application/json", `{"nmae":"a"}`, errkind.Invalid, `unknown field "nmae"`},
		{"wrong type", "application/json", `{"count":"two"}`, errkind.Invalid, `"count" must be of JSON type number`},
		{"trailing", "application/json", `{"name":"a"} {"name":"b"}`, errkind.Invalid, "more than one"},
		{"too large", "application/json", `{"name":"` + strings.Repeat("x", 200) + `"}`, errkind.TooLarge, "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got error
			h := httpx.Route{MaxBody: 100, R: renderFunc(func(w http.ResponseWriter, _ *http.Request, err error) {
				got = err
				w.WriteHeader(httpx.Status(errkind.KindOf(err)))
			}), H: func(w http.ResponseWriter, r *http.Request) error {
				var b body
				if err := httpx.DecodeJSON(r, &b); err != nil {
					return err
				}
				return httpx.JSON(w, http.StatusOK, b)
			}}
			req := httptest.NewRequest("POST", "/", strings.NewReader(tc.in))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tc.want == errkind.Internal {
				if got != nil || rec.Code != http.StatusOK {
					t.Fatalf("DecodeJSON(%q) err = %v, status %d; want success", tc.in, got, rec.Code)
				}
				return
			}
			if errkind.KindOf(got) != tc.want || !strings.Contains(errkind.Public(got), tc.msg) {
				t.Errorf("DecodeJSON(%q) err = %v (kind %v), want kind %v mentioning %q", tc.in, got, errkind.KindOf(got), tc.want, tc.msg)
			}
		})
	}
}

type renderFunc func(http.ResponseWriter, *http.Request, error)

func (f renderFunc) RenderError(w http.ResponseWriter, r *http.Request, err error) { f(w, r, err) }

func TestRouteDoesNotRenderAfterAWrite(t *testing.T) {
	rendered := false
	h := httpx.Route{R: renderFunc(func(http.ResponseWriter, *http.Request, error) { rendered = true }),
		H: func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusAccepted)
			return errors.New("late failure")
		}}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rendered || rec.Code != http.StatusAccepted {
		t.Errorf("rendered = %v, status %d; want the handler's own 202 and no second render", rendered, rec.Code)
	}
}

func TestRequestIDs(t *testing.T) {
	guidV4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	long := strings.Repeat("x", 129)
	for _, tc := range []struct {
		name       string
		sent       map[string]string
		wantEchoed map[string]string // "" means not echoed
	}{
		{"none", nil, map[string]string{"x-ms-client-request-id": "", "client-request-id": ""}},
		{"x-ms-client-request-id", map[string]string{"x-ms-client-request-id": "client-1"}, map[string]string{"x-ms-client-request-id": "client-1", "client-request-id": ""}},
		{"client-request-id (Graph)", map[string]string{"client-request-id": "graph-1"}, map[string]string{"client-request-id": "graph-1", "x-ms-client-request-id": ""}},
		{"over 128 characters is not echoed", map[string]string{"x-ms-client-request-id": long}, map[string]string{"x-ms-client-request-id": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen string
			h := httpx.WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = httpx.RequestID(r.Context()) }))
			req := httptest.NewRequest("GET", "/", nil)
			for k, v := range tc.sent {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if !guidV4.MatchString(seen) || rec.Header().Get("x-ms-request-id") != seen {
				t.Errorf("request id %q (want a random GUID), x-ms-request-id %q", seen, rec.Header().Get("x-ms-request-id"))
			}
			for k, want := range tc.wantEchoed {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
	if a, b := httpx.NewRequestID(), httpx.NewRequestID(); a == b {
		t.Errorf("two request ids are equal: %s", a)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		h, want string
		ok      bool
	}{{"Bearer abc", "abc", true}, {"bearer  abc ", "abc", true}, {"Basic abc", "", false}, {"Bearer ", "", false}, {"", "", false}} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.h != "" {
			r.Header.Set("Authorization", tc.h)
		}
		if got, ok := httpx.BearerToken(r); got != tc.want || ok != tc.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}
