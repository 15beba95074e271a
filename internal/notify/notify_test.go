package notify_test

import (
	"context"
	"slices"
	"testing"

	"github.com/customerkey/customerkey/internal/notify"
)

func TestHub(t *testing.T) {
	h := notify.NewHub()
	a, b, c := h.Node(), h.Node(), h.Node()
	heard := map[string][]string{}
	for name, n := range map[string]*notify.Node{"a": a, "b": b, "c": c} {
		n.Subscribe("vault", func(k string) { heard[name] = append(heard[name], "vault:"+k) })
	}
	b.Subscribe("rbac", func(k string) { heard["b"] = append(heard["b"], "rbac:"+k) })

	a.Publish(context.Background(), "vault", "v1")
	a.Publish(context.Background(), "rbac", notify.All)
	c.Publish(context.Background(), "other", "x")

	want := map[string][]string{"b": {"vault:v1", "rbac:"}, "c": {"vault:v1"}}
	for _, name := range []string{"a", "b", "c"} {
		if !slices.Equal(heard[name], want[name]) {
			t.Errorf("node %s heard %q, want %q", name, heard[name], want[name])
		}
	}
}

func TestSubscribersFlush(t *testing.T) {
	var s notify.Subscribers
	var got []string
	s.Add("x", func(k string) { got = append(got, "x="+k) })
	s.Add("y", func(k string) { got = append(got, "y="+k) })
	s.Deliver("x", "k")
	s.Flush()
	slices.Sort(got)
	if want := []string{"x=", "x=k", "y="}; !slices.Equal(got, want) {
		t.Errorf("heard %q, want %q", got, want)
	}
}
