package vault

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	ref := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time // zero: refused
	}{
		{"P90D", ref.AddDate(0, 0, 90)},
		{"p1y", ref.AddDate(1, 0, 0)},
		{"P1M", ref.AddDate(0, 1, 0)}, // calendar month: Jan 31 + 1 month normalizes like time.AddDate
		{"P2W", ref.AddDate(0, 0, 14)},
		{"P1Y2M3DT4H5M6S", ref.AddDate(1, 2, 3).Add(4*time.Hour + 5*time.Minute + 6*time.Second)},
		{"PT36H", ref.Add(36 * time.Hour)},
		{"P", time.Time{}}, {"PT", time.Time{}}, {"P1DT", time.Time{}}, {"90D", time.Time{}}, {"P0D", time.Time{}},
		{"P1.5D", time.Time{}}, {"-P1D", time.Time{}}, {"P1D1Y", time.Time{}}, {"", time.Time{}},
		{"P" + strings.Repeat("9", 20) + "D", time.Time{}},
	}
	for _, c := range cases {
		d, err := parseDuration(c.in)
		if c.want.IsZero() {
			if err == nil {
				t.Errorf("parseDuration(%q) = %+v, want an error", c.in, d)
			}
			continue
		}
		if err != nil || !d.addTo(ref).Equal(c.want) {
			t.Errorf("parseDuration(%q) adds to %v, err %v; want %v", c.in, d.addTo(ref), err, c.want)
		}
	}
}

func FuzzRotationPolicy(f *testing.F) {
	for _, s := range []string{"P30D", "P1Y", "PT12H", "P1W", "P", "P1DT", "P99999D"} {
		f.Add(s, "P90D", "rotate")
	}
	ref := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, trig, expiry, typ string) {
		p, err := checkRotationPolicy(RotationPolicy{ExpiryTime: expiry,
			LifetimeActions: []LifetimeAction{{TimeAfterCreate: trig, Type: typ}}}, ref)
		if err != nil {
			return
		}
		// An accepted policy parses again and never rotates sooner than 7 days.
		if _, err := checkRotationPolicy(p, ref); err != nil {
			t.Errorf("accepted policy %+v is refused when given back: %v", p, err)
		}
		m := versionRecord{Created: ref}
		if next := nextRotation(&p, m); next != nil && next.Sub(ref) < minRotationDays*day24 {
			t.Errorf("policy %+v rotates after %v", p, next.Sub(ref))
		}
	})
}
