package files

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// MaxPathLen bounds a file's path within its site, in bytes (SharePoint's
// limit is 400 characters for the decoded path).
const MaxPathLen = 400

// File is a file's metadata.
type File struct {
	SiteID     string    `json:"siteId"`
	Path       string    `json:"path"`
	Size       int64     `json:"size"`
	ChunkCount int       `json:"chunkCount"`
	CreatedAt  time.Time `json:"createdDateTime"`
	ModifiedAt time.Time `json:"lastModifiedDateTime"`
	// ModifiedBy is the object id of who wrote the current content.
	ModifiedBy string `json:"lastModifiedBy"`
}

// chunkRef is one entry of a file's chunk map: which record holds the
// chunk, its plaintext size, and its chunk key wrapped by the site key.
type chunkRef struct {
	ID         string `json:"id"`
	Size       int    `json:"size"`
	WrappedKey []byte `json:"wrappedKey"`
}

// fileRecord is what is stored of a file besides its chunks.
type fileRecord struct {
	File
	Chunks []chunkRef `json:"chunkMap"`
}

// Key ids name what sealed each blob: the site key seals chunk keys, a
// chunk key seals its chunk. Site keys are never replaced (a policy change
// rewraps the same key), so their version is 1.
func siteKeyID(id string) string  { return "site/" + id }
func chunkKeyID(id string) string { return "chunk/" + id }

const keyVersion = 1

// chunkKey is a chunk's storage key. It is also the additional data of the
// chunk and of its wrapped chunk key, so that neither opens anywhere else.
func chunkKey(tid, site, id string) string { return kChunk + tid + "/" + site + "/" + id }

func fileKey(tid, site, path string) string {
	return kFile + tid + "/" + site + "/" + strings.ToLower(path)
}

// checkPath validates a path within a site ("Shared Documents/q1.xlsx") and
// returns it without a leading slash.
func checkPath(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	bad := func(why string) error {
		return errkind.Errorf(errkind.Invalid, "the file path %q is not valid: %s", p, why)
	}
	if p == "" || len(p) > MaxPathLen || !utf8.ValidString(p) {
		return "", bad(fmt.Sprintf("it must be 1 to %d bytes of UTF-8", MaxPathLen))
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return "", bad("it has an empty segment")
		case seg == "." || seg == "..":
			return "", bad("it has a . or .. segment")
		case strings.TrimSpace(seg) != seg:
			return "", bad("a segment starts or ends with a space")
		case strings.ContainsAny(seg, `"*:<>?\|`) || strings.ContainsFunc(seg, unicode.IsControl):
			return "", bad(`a segment contains one of " * : < > ? \ | or a control character`)
		}
	}
	return p, nil
}

// contentAccess returns the site named by identity once c may use its files.
func (s *Service) contentAccess(ctx context.Context, c directory.Caller, tid, identity string) (siteRecord, error) {
	rec, err := s.site(ctx, c, tid, identity)
	if err != nil {
		return rec, err
	}
	return rec, s.authorizeSite(ctx, c, rec.Site)
}

// siteSealer unwraps rec's site key through dep, for a user request, and
// returns a sealer for it; the key itself is wiped before returning.
// Revocation errors of dep come back unchanged.
func (s *Service) siteSealer(ctx context.Context, rec siteRecord) (*envelope.Sealer, error) {
	key, err := s.dep.UnwrapScopeKey(ctx, rec.TenantID, rec.WrappedKey, scopeAAD(rec.TenantID, rec.ID), scope.Purpose(ctx))
	if err != nil {
		return nil, err
	}
	defer key.Wipe()
	return envelope.NewSealer(key, siteKeyID(rec.ID), keyVersion)
}

// sealedChunk is a chunk ready to store.
type sealedChunk struct {
	ref  chunkRef
	blob []byte
}

// PutFile writes a file's whole content, read from r, in a site: every
// chunk is sealed under a fresh chunk key. The new chunks, the file record
// and the deletion of the previous content's chunks commit in one
// transaction, so a failed write leaves the previous content whole.
func (s *Service) PutFile(ctx context.Context, c directory.Caller, tid, site, path string, r io.Reader) (File, error) {
	rec, err := s.contentAccess(ctx, c, tid, site)
	if err != nil {
		return File{}, err
	}
	if path, err = checkPath(path); err != nil {
		return File{}, err
	}
	sealer, err := s.siteSealer(ctx, rec)
	if err != nil {
		return File{}, err
	}
	tid = rec.TenantID
	chunks, size, err := s.seal(tid, rec.ID, sealer, r)
	if err != nil {
		return File{}, err
	}
	now := s.now().UTC()
	f := fileRecord{File: File{SiteID: rec.ID, Path: path, Size: size, ChunkCount: len(chunks), CreatedAt: now, ModifiedAt: now,
		ModifiedBy: lower(c.ID)}}
	for _, ch := range chunks {
		f.Chunks = append(f.Chunks, ch.ref)
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		// The site may have been purged since it was read.
		if _, err := tx.Get(kSite + tid + "/" + rec.ID); err != nil {
			return notFound(err, ErrSiteNotFound)
		}
		var old fileRecord
		switch _, err := storage.GetJSON(tx, fileKey(tid, rec.ID, path), &old); {
		case err == nil:
			f.CreatedAt = old.CreatedAt
			if err := deleteChunks(tx, tid, rec.ID, old.Chunks); err != nil {
				return err
			}
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		for _, ch := range chunks {
			if _, err := tx.Put(chunkKey(tid, rec.ID, ch.ref.ID), ch.blob, storage.MustNotExist); err != nil {
				return err
			}
		}
		return storage.PutJSON(tx, fileKey(tid, rec.ID, path), f, storage.AnyVersion)
	})
	if err != nil {
		return File{}, err
	}
	return f.File, nil
}

// seal reads r to its end in chunks of the configured size and seals each
// under a fresh chunk key wrapped by the site sealer. An empty file has no
// chunks; a file of an exact multiple of the chunk size has no empty last
// chunk.
func (s *Service) seal(tid, site string, sealer *envelope.Sealer, r io.Reader) ([]sealedChunk, int64, error) {
	var chunks []sealedChunk
	var size int64
	buf := make([]byte, s.chunkSize)
	defer secret.Wipe(buf) // plaintext content, not a key, but no reason to leave it behind
	lr := io.LimitReader(r, s.maxSize+1)
	for {
		n, err := io.ReadFull(lr, buf)
		if n > 0 {
			size += int64(n)
			if size > s.maxSize {
				return nil, 0, errkind.Errorf(errkind.TooLarge, "the file is larger than %d bytes, the limit of a file", s.maxSize).
					WithCode("FileTooLarge")
			}
			ch, err := s.sealChunk(tid, site, sealer, buf[:n])
			if err != nil {
				return nil, 0, err
			}
			chunks = append(chunks, ch)
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return chunks, size, nil
		case err != nil:
			return nil, 0, errkind.Wrap(errkind.Invalid, "the file content could not be read to its end; nothing was written", err)
		}
	}
}

func (s *Service) sealChunk(tid, site string, sealer *envelope.Sealer, plain []byte) (sealedChunk, error) {
	id, err := s.newID()
	if err != nil {
		return sealedChunk{}, err
	}
	ck, err := envelope.NewKey()
	if err != nil {
		return sealedChunk{}, err
	}
	defer ck.Wipe()
	cs, err := envelope.NewSealer(ck, chunkKeyID(id), keyVersion)
	if err != nil {
		return sealedChunk{}, err
	}
	aad := []byte(chunkKey(tid, site, id))
	return sealedChunk{ref: chunkRef{ID: id, Size: len(plain), WrappedKey: sealer.Seal(ck.Reveal(), aad)}, blob: cs.Seal(plain, aad)}, nil
}

func deleteChunks(tx storage.Tx, tid, site string, chunks []chunkRef) error {
	for _, ch := range chunks {
		if err := tx.Delete(chunkKey(tid, site, ch.ID), storage.AnyVersion); err != nil {
			return err
		}
	}
	return nil
}

// GetFile returns a file's metadata and content, read from one consistent
// snapshot. When the customer has revoked the policy's root keys, the
// error is dep's (PermissionDenied).
func (s *Service) GetFile(ctx context.Context, c directory.Caller, tid, site, path string) (File, []byte, error) {
	rec, err := s.contentAccess(ctx, c, tid, site)
	if err != nil {
		return File{}, nil, err
	}
	if path, err = checkPath(path); err != nil {
		return File{}, nil, ErrFileNotFound
	}
	tid = rec.TenantID
	var f fileRecord
	var blobs [][]byte
	err = s.store.View(ctx, func(tx storage.Tx) error {
		if _, err := storage.GetJSON(tx, fileKey(tid, rec.ID, path), &f); err != nil {
			return notFound(err, ErrFileNotFound)
		}
		for _, ch := range f.Chunks {
			e, err := tx.Get(chunkKey(tid, rec.ID, ch.ID))
			if err != nil {
				return fmt.Errorf("files: chunk %s of %s: %w", ch.ID, path, err)
			}
			blobs = append(blobs, e.Value)
		}
		return nil
	})
	if err != nil {
		return File{}, nil, err
	}
	sealer, err := s.siteSealer(ctx, rec)
	if err != nil {
		return File{}, nil, err
	}
	out := make([]byte, 0, f.Size)
	for i, ch := range f.Chunks {
		if out, err = openChunk(out, sealer, chunkKey(tid, rec.ID, ch.ID), ch, blobs[i]); err != nil {
			return File{}, nil, err
		}
	}
	if int64(len(out)) != f.Size {
		return File{}, nil, errkind.Errorf(errkind.Internal, "the file %s has %d bytes in its chunks but its record says %d", path, len(out), f.Size)
	}
	return f.File, out, nil
}

// openChunk unwraps a chunk's key with the site sealer, opens the chunk and
// appends its plaintext to out.
func openChunk(out []byte, site *envelope.Sealer, key string, ch chunkRef, blob []byte) ([]byte, error) {
	raw, err := site.Open(ch.WrappedKey, []byte(key))
	if err != nil {
		return out, scope.Damaged("key of chunk "+ch.ID, err)
	}
	ck := secret.New(raw)
	defer ck.Wipe()
	cs, err := envelope.NewSealer(ck, chunkKeyID(ch.ID), keyVersion)
	if err != nil {
		return out, err
	}
	plain, err := cs.Open(blob, []byte(key))
	if err != nil {
		return out, scope.Damaged("chunk "+ch.ID, err)
	}
	if len(plain) != ch.Size {
		return out, errkind.Errorf(errkind.Internal, "the chunk %s has %d bytes, its map says %d", ch.ID, len(plain), ch.Size)
	}
	return append(out, plain...), nil
}

// FilePage is one page of files, in path order (ignoring case), and the
// token of the next page (empty on the last).
type FilePage struct {
	Files []File `json:"value"`
	Next  string `json:"nextPageToken,omitempty"`
}

// ListFiles lists up to limit files of a site after pageToken (empty for
// the first page). It reads metadata only and needs no key.
func (s *Service) ListFiles(ctx context.Context, c directory.Caller, tid, site, pageToken string, limit int) (FilePage, error) {
	rec, err := s.contentAccess(ctx, c, tid, site)
	if err != nil {
		return FilePage{}, err
	}
	after := ""
	if pageToken != "" {
		if after, err = checkPath(pageToken); err != nil {
			return FilePage{}, scope.ErrBadPageToken
		}
	}
	recs, next, err := scope.List[fileRecord](ctx, s.store, kFile+rec.TenantID+"/"+rec.ID+"/", strings.ToLower(after), limit)
	if err != nil {
		return FilePage{}, err
	}
	page := FilePage{Files: make([]File, len(recs)), Next: next}
	for i, f := range recs {
		page.Files[i] = f.File
	}
	return page, nil
}

// DeleteFile deletes a file and its chunks. It needs no key.
func (s *Service) DeleteFile(ctx context.Context, c directory.Caller, tid, site, path string) error {
	rec, err := s.contentAccess(ctx, c, tid, site)
	if err != nil {
		return err
	}
	if path, err = checkPath(path); err != nil {
		return ErrFileNotFound
	}
	tid = rec.TenantID
	return s.store.Update(ctx, func(tx storage.Tx) error {
		var f fileRecord
		if _, err := storage.GetJSON(tx, fileKey(tid, rec.ID, path), &f); err != nil {
			return notFound(err, ErrFileNotFound)
		}
		if err := deleteChunks(tx, tid, rec.ID, f.Chunks); err != nil {
			return err
		}
		return tx.Delete(fileKey(tid, rec.ID, path), storage.AnyVersion)
	})
}

func jsonUnmarshal(e storage.Entry, v any) error {
	if err := json.Unmarshal(e.Value, v); err != nil {
		return fmt.Errorf("files: decoding %s: %w", e.Key, err)
	}
	return nil
}
