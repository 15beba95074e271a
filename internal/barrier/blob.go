package barrier

import (
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// blobAAD starts the additional data of everything Seal protects. It
// differs from valueAAD before either ends ("blob-v1" against "v1"), so no
// choice of storage key and caller aad makes the two equal: a sealed blob
// is never accepted as a stored value, nor a stored value as a blob.
const blobAAD = "customerkey-barrier-blob-v1\x00"

func getBlobAAD(aad []byte) *[]byte {
	p := aadPool.Get().(*[]byte)
	*p = append(append((*p)[:0], blobAAD...), aad...)
	return p
}

// Seal encrypts plaintext that its caller keeps outside the store (the
// audit journal's segment files), under the barrier's newest data key, so
// that nothing reaches the disk in the clear there either. aad is
// authenticated but not encrypted: bind the blob to where it is kept, and
// Open must be given the same aad. The format is that of a stored value
// (version, term, nonce, ciphertext and tag), so a blob survives rotation:
// Open reads blobs of every term this barrier knows.
//
// Seal and Open need no context: the data keys are in memory, so they do
// no I/O.
func (b *Barrier) Seal(aad, plaintext []byte) ([]byte, error) {
	kr := b.kr.Load()
	if kr == nil {
		return nil, storage.ErrClosed
	}
	p := getBlobAAD(aad)
	out := kr.sealAAD(*p, plaintext)
	aadPool.Put(p)
	return out, nil
}

// Open decrypts what Seal produced with the same aad. Every failure (a
// short or unknown format, an unknown term, tampering, another aad) is an
// errkind.Internal error with ErrDecrypt in its chain, which shows nothing
// of the blob. Blobs are opened by the node that sealed them, after a
// restart at the latest, when the keyring read at Open holds every term it
// used; so unlike a stored value, an unknown term does not reload it.
func (b *Barrier) Open(aad, sealed []byte) ([]byte, error) {
	kr := b.kr.Load()
	if kr == nil {
		return nil, storage.ErrClosed
	}
	p := getBlobAAD(aad)
	out, why := kr.openAAD(*p, sealed)
	aadPool.Put(p)
	if why != "" {
		return nil, &errkind.Error{Kind: errkind.Internal, Msg: "barrier: cannot decrypt a sealed blob", Err: why}
	}
	return out, nil
}
