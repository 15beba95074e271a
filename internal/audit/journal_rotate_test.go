package audit

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"os"
	"testing"
)

// gcmSealer is AES-256-GCM under a fixed key with a zero nonce: enough for
// a test whose every frame has its own place, and so its own AAD.
type gcmSealer struct{ aead cipher.AEAD }

func newGCMSealer(t *testing.T) gcmSealer {
	b, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return gcmSealer{a}
}

func (g gcmSealer) Seal(aad, pt []byte) ([]byte, error) {
	return g.aead.Seal(nil, make([]byte, g.aead.NonceSize()), pt, aad), nil
}

func (g gcmSealer) Open(aad, ct []byte) ([]byte, error) {
	return g.aead.Open(nil, make([]byte, g.aead.NonceSize()), ct, aad)
}

func recsOf(n, size int) []prepared {
	recs := make([]prepared, n)
	for i := range recs {
		recs[i] = prepared{key: fmt.Sprintf("rec/%04d", i), val: bytes.Repeat([]byte{'v'}, size)}
	}
	return recs
}

// A rotation that fails (here: the next segment's file cannot be made)
// fails that append only; a later frame that fits goes on into the active
// segment under that segment's own number, and a restart replays every
// acknowledged frame.
func TestJournalFailedRotationKeepsTheActiveSegment(t *testing.T) {
	dir := t.TempDir()
	s := newGCMSealer(t)
	j, err := openJournal(dir, s, 4096)
	if err != nil {
		t.Fatal(err)
	}
	var acked [][]prepared
	for range 2 {
		r := recsOf(2, 200)
		if _, err := j.append(r); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, r)
	}
	// Take the spare away and put a directory where the next one would be
	// made, so that rotating fails.
	j.dropSpare()
	if err := os.Mkdir(j.sparePath(), 0o700); err != nil {
		t.Fatal(err)
	}
	seq := j.wseq
	if _, err := j.append(recsOf(1, 3500)); err == nil {
		t.Fatal("an append that needed a new segment succeeded without one")
	}
	small := recsOf(1, 100)
	if _, err := j.append(small); err != nil {
		t.Fatalf("an append that fits the active segment after a failed rotation: %v", err)
	}
	acked = append(acked, small)
	if j.wseq != seq {
		t.Fatalf("the active segment is numbered %d after the failed rotation, want %d", j.wseq, seq)
	}
	if err := os.Remove(j.sparePath()); err != nil {
		t.Fatal(err)
	}
	if err := j.close(false); err != nil {
		t.Fatal(err)
	}

	// What a restart finds: every acknowledged frame, readable in order.
	j2, err := openJournal(dir, s, 4096)
	if err != nil {
		t.Fatalf("reopening after a failed rotation: %v", err)
	}
	defer j2.close(false)
	segs := j2.snapshot()
	f, err := os.Open(j2.path(segs[0].seq))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := pos{seq: segs[0].seq, off: segHeaderLen}
	for i, want := range acked {
		got, n, err := j2.readFrame(f, p)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(got) != len(want) || got[0].key != want[0].key || !bytes.Equal(got[0].val, want[0].val) {
			t.Fatalf("frame %d holds %d records starting %q, want %d starting %q", i, len(got), got[0].key, len(want), want[0].key)
		}
		p.off += n
	}
	if p.off != segs[0].end {
		t.Errorf("frames end at %d, the scan says %d", p.off, segs[0].end)
	}
}
