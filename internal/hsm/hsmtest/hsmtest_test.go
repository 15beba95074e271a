package hsmtest_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/customerkey/customerkey/internal/hsm/hsmtest"
)

// TestKeyWrapPad checks the customer-side key wrap against RFC 5649 §6.
func TestKeyWrapPad(t *testing.T) {
	kek, _ := hex.DecodeString("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	tests := []struct{ key, want string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	}
	for _, tc := range tests {
		key, _ := hex.DecodeString(tc.key)
		want, _ := hex.DecodeString(tc.want)
		got, err := hsmtest.KeyWrapPad(kek, key)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("KeyWrapPad(%s) = %x, %v, want %x", tc.key, got, err, want)
		}
	}
}
