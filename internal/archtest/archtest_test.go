package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/customerkey/customerkey/"

type pkg struct {
	rel     string // path below internal/
	doc     string
	imports map[string]string // import path -> a file importing it
}

// load parses the non-test files of every package below internal/.
func load(t *testing.T) map[string]*pkg {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]*pkg{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		p := pkgs[rel]
		if p == nil {
			p = &pkg{rel: rel, imports: map[string]string{}}
			pkgs[rel] = p
		}
		if f.Doc != nil {
			p.doc += f.Doc.Text()
		}
		for _, im := range f.Imports {
			ip, _ := strconv.Unquote(im.Path.Value)
			p.imports[ip] = filepath.Base(path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestLayers(t *testing.T) {
	for rel, p := range load(t) {
		lvl, ok := Levels[rel]
		if !ok {
			t.Errorf("package internal/%s has no level in archtest.Levels; place it in ARCHITECTURE.md §3 and the table", rel)
			continue
		}
		for ip, file := range p.imports {
			dep, ok := strings.CutPrefix(ip, module+"internal/")
			if !ok {
				continue
			}
			dl, known := Levels[dep]
			switch {
			case !known:
				t.Errorf("internal/%s (%s) imports internal/%s, which has no level", rel, file, dep)
			case dl > lvl:
				t.Errorf("internal/%s (level %d, %s) imports internal/%s of the higher level %d", rel, lvl, file, dep, dl)
			case dl == lvl && !strings.Contains(p.doc, dep):
				t.Errorf("internal/%s (%s) imports internal/%s of its own level %d; allowed only if its package doc names %q", rel, file, dep, lvl, dep)
			}
		}
	}
}

func TestDomainStaysOffHTTP(t *testing.T) {
	pkgs := load(t)
	for _, d := range Domain {
		p := pkgs[d]
		if p == nil {
			continue
		}
		for _, banned := range []string{"net/http", "net/http/httptest"} {
			if file, ok := p.imports[banned]; ok {
				t.Errorf("domain package internal/%s imports %s in %s; keep HTTP in the adapters", d, banned, file)
			}
		}
	}
}

func TestStorageImplementations(t *testing.T) {
	for rel, p := range load(t) {
		for _, impl := range StorageImpls {
			if file, ok := p.imports[module+"internal/"+impl]; ok && !slices.Contains(StorageImplUsers, rel) {
				t.Errorf("internal/%s (%s) imports internal/%s; only %v may choose a storage implementation", rel, file, impl, StorageImplUsers)
			}
		}
	}
}

func TestPackageDocs(t *testing.T) {
	for rel, p := range load(t) {
		if strings.TrimSpace(p.doc) == "" {
			t.Errorf("internal/%s has no package doc comment; say what it owns and what it must not import", rel)
		}
	}
}
