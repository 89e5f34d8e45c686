package bundles

import (
	"context"
	"io/fs"
	"sync"
)

// FSSource is a bundle directory tree in an fs.FS, such as the embedded
// default policy. It is read at every load and never watched: an fs.FS
// says nothing of changes. Its name defaults to "embedded".
func FSSource(fsys fs.FS, opts ...SourceOption) Source {
	return &fsSource{sourceBase: newSourceBase("embedded", opts), fsys: fsys}
}

type fsSource struct {
	sourceBase
	fsys fs.FS
}

func (s *fsSource) open(c *compileConfig) (feed, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return &fsFeed{src: s, c: c}, nil
}

type fsFeed struct {
	src *fsSource
	c   *compileConfig
}

func (f *fsFeed) fetch(context.Context, bool) (Update, bool) { return Update{}, false }

func (f *fsFeed) read(withTests bool) (*namedBundle, error) {
	return f.c.readBundle(f.src.name, f.src.name, newFSLoader(f.src.fsys), f.src.verification, withTests)
}

func (f *fsFeed) follow(context.Context, *sync.WaitGroup, func(context.Context, Update)) {}
