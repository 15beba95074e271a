package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/notify"
)

// TestRotationAnnounced: a node that rotates the signing keys tells the
// others, which publish the new key at once instead of after re-reading
// the keyring a minute later.
func TestRotationAnnounced(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hub := notify.NewHub()
	// Node A's key is due after 10 minutes, node B's after an hour: only A
	// rotates, and B has no reason of its own to read the keyring again
	// within keyringTTL (a minute).
	a := e.newService(func(o *identity.Options) { o.KeyRotation = 10 * time.Minute; o.Bus = hub.Node() })
	b := e.newService(func(o *identity.Options) { o.KeyRotation = time.Hour; o.Bus = hub.Node() })
	jwks := func(s *identity.Service) []string {
		set, err := s.JWKS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.KeyID)
		}
		return kids
	}
	e.clock.Advance(11 * time.Minute)
	before := jwks(b) // B reloads now (its copy was 11 minutes old) and keeps its key
	if err := a.RotateKeysIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	got, want := jwks(b), jwks(a)
	if len(want) != len(before)+1 || len(got) != len(want) || got[len(got)-1] != want[len(want)-1] {
		t.Errorf("node B publishes %v right after node A rotated, want A's keyring %v (one key more than %v)", got, want, before)
	}
}
