package audit

import "time"

// WithDrainPeriod returns o with the drainer's period set to d, so that a
// test can keep records in the journal (a long period) until something
// forces a drain.
func WithDrainPeriod(o BatchOptions, d time.Duration) BatchOptions {
	o.drainPeriod = d
	return o
}

// WithSegmentSize returns o with the journal's segments rotated at n bytes,
// so that a test sees several segments without writing megabytes.
func WithSegmentSize(o BatchOptions, n int64) BatchOptions {
	o.segmentSize = n
	return o
}

// JournalEnd returns the offset after the last durable frame of the
// journal's newest segment: with preallocated segments the file size says
// nothing about it.
func JournalEnd(b *Batcher) int64 { return b.j.acked().off }
