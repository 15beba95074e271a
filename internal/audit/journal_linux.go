package audit

import (
	"os"
	"syscall"
)

// datasync makes f's data durable. fdatasync skips the timestamp update
// that fsync also writes; the size of an appended file is still flushed,
// since reading the data back needs it.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
