package app

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAccessLog(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  string // "" when nothing is logged
	}{
		{slog.LevelDebug, "msg=request method=POST host=example.com path=/x status=418"},
		{slog.LevelInfo, ""},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			s := &Server{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))}
			h := s.accessLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "https://example.com/x?code=secret", nil))
			if rec.Code != http.StatusTeapot {
				t.Fatalf("status %d, want the handler's 418", rec.Code)
			}
			got := buf.String()
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("logged %q, want %q", got, tc.want)
			}
			if strings.Contains(got, "secret") {
				t.Errorf("the access log holds the query string: %q", got)
			}
		})
	}
}
