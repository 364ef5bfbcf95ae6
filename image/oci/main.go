// Command oci-image turns a root filesystem directory into an OCI image without a container
// engine: one layer, the image config the chart expects, written as an OCI image layout and as
// an OCI archive (a tar of that layout). The same inputs give the same bytes, so the same
// digest: entries are sorted, owned by 0:0, stamped with one fixed time, and gzip is written
// without a name or time in its header.
//
// It uses go-containerregistry (the library behind crane) for the image model, digests and the
// layout; `crane`, built from the same module version, pushes and inspects the result
// (image/image.sh).
//
//	oci-image -rootfs DIR -layout DIR -archive FILE -created UNIX_SECONDS -user UID:GID
//	          -entrypoint PATH [-cmd ARG]... [-env K=V]... [-workdir DIR] [-label K=V]...
//	          [-expose PORT/tcp]... [-ref-name NAME] [-created-by TEXT]
//
// Without -env the environment is what an engine gives a `FROM scratch` image (PATH only); the
// node's test images (tests/node/images.sh) set their own.
//
// Prints the image's manifest digest (sha256:...) on success.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// list collects a repeated flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "oci-image:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		rootfs, layoutDir, archive, user, entrypoint, refName, platform, workdir string
		createdBy                                                                string
		created                                                                  int64
		labels, exposed, cmd, env                                                list
	)
	flag.StringVar(&rootfs, "rootfs", "", "root filesystem directory (image/rootfs.sh)")
	flag.StringVar(&layoutDir, "layout", "", "OCI image layout directory to write (replaced)")
	flag.StringVar(&archive, "archive", "", "OCI archive (tar of the layout) to write")
	flag.Int64Var(&created, "created", -1, "creation time and every file's mtime, in Unix seconds")
	flag.StringVar(&user, "user", "", "user the container runs as (UID:GID)")
	flag.StringVar(&entrypoint, "entrypoint", "", "the image's entrypoint (an absolute path in the rootfs)")
	flag.Var(&cmd, "cmd", "default argument (repeat for several)")
	flag.Var(&env, "env", "environment variable KEY=VALUE (repeat; replaces the default PATH)")
	flag.StringVar(&workdir, "workdir", "", "the container's working directory")
	flag.StringVar(&createdBy, "created-by", "image/rootfs.sh (the webhook, its shared libraries, CA certificates, passwd)",
		"the layer's history entry")
	flag.Var(&labels, "label", "image label KEY=VALUE (repeat)")
	flag.Var(&exposed, "expose", "exposed port PORT/tcp (repeat)")
	flag.StringVar(&refName, "ref-name", "", "org.opencontainers.image.ref.name of the layout's entry")
	flag.StringVar(&platform, "platform", "linux/amd64", "OS/ARCH of the image")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if rootfs == "" || layoutDir == "" || archive == "" || user == "" || entrypoint == "" || created < 0 {
		return errors.New("-rootfs, -layout, -archive, -created, -user and -entrypoint are required")
	}
	osName, arch, ok := strings.Cut(platform, "/")
	if !ok {
		return fmt.Errorf("-platform %q is not OS/ARCH", platform)
	}
	stamp := time.Unix(created, 0).UTC()

	if info, err := os.Stat(filepath.Join(rootfs, entrypoint)); err != nil || info.Mode()&0o111 == 0 {
		return fmt.Errorf("entrypoint %s is not an executable file in %s", entrypoint, rootfs)
	}

	var layerTar bytes.Buffer
	if err := tarTree(&layerTar, rootfs, stamp, false); err != nil {
		return fmt.Errorf("layer from %s: %w", rootfs, err)
	}
	layerBytes := layerTar.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}

	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: stamp},
			CreatedBy: createdBy,
		},
	})
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = osName, arch
	cf.Created = v1.Time{Time: stamp}
	cf.Config.User = user
	cf.Config.Entrypoint = []string{entrypoint}
	cf.Config.Cmd = cmd
	// What an engine's build gives a `FROM scratch` image (image/Dockerfile describes the same).
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if len(env) > 0 {
		for _, kv := range env {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return fmt.Errorf("-env %q is not KEY=VALUE", kv)
			}
		}
		cf.Config.Env = env
	}
	cf.Config.WorkingDir = workdir
	if len(labels) > 0 {
		cf.Config.Labels = map[string]string{}
		for _, kv := range labels {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("-label %q is not KEY=VALUE", kv)
			}
			cf.Config.Labels[k] = v
		}
	}
	if len(exposed) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range exposed {
			port, proto, _ := strings.Cut(p, "/")
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp") {
				return fmt.Errorf("-expose %q is not PORT/tcp or PORT/udp", p)
			}
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}

	if err := os.RemoveAll(layoutDir); err != nil {
		return err
	}
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return err
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName}))
	}
	if err := lp.AppendImage(img, opts...); err != nil {
		return err
	}

	// The archive: the layout's files, as `skopeo copy oci-archive:` and containerd's importer
	// read them. Written beside the target and renamed, so a failed build leaves no half file.
	tmp := archive + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := tarTree(f, layoutDir, stamp, true); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("archive of %s: %w", layoutDir, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, archive); err != nil {
		return err
	}

	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(digest.String())
	return nil
}

// tarTree writes the tree under dir as a tar stream: entries in byte order of their paths,
// names relative to dir (directories end in "/"), owner 0:0 without names, every time set to
// stamp. Regular files, directories and symbolic links only; anything else is an error, so a
// device node or a socket never slips into an image. plain gives every file mode 0644 and every
// directory 0755 (for the archive, whose files' modes are only the library's choice); otherwise
// the modes are kept (the layer: executables, /tmp's sticky bit).
func tarTree(w io.Writer, dir string, stamp time.Time, plain bool) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		hdr := &tar.Header{
			Name:    rel,
			Mode:    int64(info.Mode().Perm()),
			ModTime: stamp,
			Format:  tar.FormatPAX,
		}
		if info.Mode()&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		if info.Mode()&fs.ModeSetuid != 0 || info.Mode()&fs.ModeSetgid != 0 {
			return fmt.Errorf("%s: set-user/group-ID files are not put in an image", rel)
		}
		switch {
		case info.Mode().IsRegular():
			hdr.Typeflag = tar.TypeReg
			hdr.Size = info.Size()
			if plain {
				hdr.Mode = 0o644
			}
		case info.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			if plain {
				hdr.Mode = 0o755
			}
		case info.Mode()&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: only files, directories and symbolic links go in an image (mode %s)", rel, info.Mode())
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
			if n != hdr.Size {
				return fmt.Errorf("%s changed size while being read", rel)
			}
		}
	}
	return tw.Close()
}
