// Command provider is a grpc-go stand-in for a secrets-store CSI driver provider plugin (AWS, Azure, GCP,
// Vault are all Go programs like this one). It serves v1alpha1.CSIDriverProvider on a unix socket and
// answers Mount with files from a directory and/or fixed contents, plus "echo" files holding exactly what
// the driver sent, so a test can compare the request byte for byte.
//
// It prints one JSON line {"ready":true,"socket":...} on stdout once it listens, and one JSON line per
// call on stderr. SIGTERM or SIGINT stops it and removes the socket.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	_ "interop/codec"
	pb "interop/gen/v1alpha1"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type config struct {
	socket      string
	filesDir    string
	fixed       listFlag
	echo        bool
	errorCode   string
	grpcCode    int
	delay       time.Duration
	runtimeName string
	fileMode    int
}

type server struct {
	pb.UnimplementedCSIDriverProviderServer
	cfg config
}

func (s *server) Version(ctx context.Context, req *pb.VersionRequest) (*pb.VersionResponse, error) {
	logCall("Version", map[string]interface{}{"version": req.GetVersion()})
	return &pb.VersionResponse{Version: "v1alpha1", RuntimeName: s.cfg.runtimeName, RuntimeVersion: "0.1.0"}, nil
}

func (s *server) Mount(ctx context.Context, req *pb.MountRequest) (*pb.MountResponse, error) {
	logCall("Mount", map[string]interface{}{
		"targetPath":           req.GetTargetPath(),
		"permission":           req.GetPermission(),
		"currentObjectVersion": versionsJSON(req.GetCurrentObjectVersion()),
	})
	if s.cfg.delay > 0 {
		select {
		case <-time.After(s.cfg.delay):
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if s.cfg.grpcCode != 0 {
		return nil, status.Errorf(codes.Code(s.cfg.grpcCode), "provider stand-in told to fail with code %d", s.cfg.grpcCode)
	}
	if s.cfg.errorCode != "" {
		return &pb.MountResponse{Error: &pb.Error{Code: s.cfg.errorCode}}, nil
	}
	files, err := s.files(req)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &pb.MountResponse{Files: files}
	for _, f := range files {
		sum := sha256.Sum256(f.Contents)
		resp.ObjectVersion = append(resp.ObjectVersion, &pb.ObjectVersion{Id: f.Path, Version: hex.EncodeToString(sum[:8])})
	}
	return resp, nil
}

// files gathers the response: the files-dir tree, the fixed contents, then the echo files.
func (s *server) files(req *pb.MountRequest) ([]*pb.File, error) {
	var out []*pb.File
	if s.cfg.filesDir != "" {
		err := filepath.WalkDir(s.cfg.filesDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(s.cfg.filesDir, path)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			contents, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out = append(out, &pb.File{Path: filepath.ToSlash(rel), Mode: int32(info.Mode().Perm()), Contents: contents})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading -files-dir: %w", err)
		}
	}
	for _, kv := range s.cfg.fixed {
		name, contents, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("-file %q: want path=contents", kv)
		}
		out = append(out, &pb.File{Path: name, Mode: int32(s.cfg.fileMode), Contents: []byte(contents)})
	}
	if s.cfg.echo {
		rest, err := json.Marshal(map[string]interface{}{
			"target_path":            req.GetTargetPath(),
			"permission":             req.GetPermission(),
			"current_object_version": versionsJSON(req.GetCurrentObjectVersion()),
		})
		if err != nil {
			return nil, err
		}
		out = append(out,
			&pb.File{Path: "echo-attributes.json", Mode: int32(s.cfg.fileMode), Contents: []byte(req.GetAttributes())},
			&pb.File{Path: "echo-secrets.json", Mode: int32(s.cfg.fileMode), Contents: []byte(req.GetSecrets())},
			&pb.File{Path: "echo-request.json", Mode: int32(s.cfg.fileMode), Contents: rest},
		)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func versionsJSON(versions []*pb.ObjectVersion) []map[string]string {
	out := []map[string]string{}
	for _, v := range versions {
		out = append(out, map[string]string{"id": v.GetId(), "version": v.GetVersion()})
	}
	return out
}

func logCall(method string, fields map[string]interface{}) {
	fields["call"] = method
	line, _ := json.Marshal(fields)
	fmt.Fprintln(os.Stderr, string(line))
}

func main() {
	var cfg config
	flag.StringVar(&cfg.socket, "socket", "", "unix socket to serve on, e.g. /dir/name.sock (required)")
	flag.StringVar(&cfg.filesDir, "files-dir", "", "serve every regular file below this directory, with its mode")
	flag.Var(&cfg.fixed, "file", "path=contents: one more file to serve (repeatable)")
	flag.BoolVar(&cfg.echo, "echo", true, "return echo-attributes.json, echo-secrets.json, echo-request.json")
	flag.StringVar(&cfg.errorCode, "error-code", "", "answer Mount with MountResponse.error.code set to this")
	flag.IntVar(&cfg.grpcCode, "grpc-code", 0, "fail Mount with this gRPC status code")
	flag.DurationVar(&cfg.delay, "delay", 0, "wait this long before answering Mount (ends early when the caller gives up)")
	flag.StringVar(&cfg.runtimeName, "runtime-name", "go-provider-standin", "VersionResponse.runtime_name")
	flag.IntVar(&cfg.fileMode, "file-mode", 0o644, "mode of -file and echo files")
	flag.Parse()
	if cfg.socket == "" {
		fmt.Fprintln(os.Stderr, "provider: -socket is required")
		os.Exit(2)
	}

	_ = os.Remove(cfg.socket)
	listener, err := net.Listen("unix", cfg.socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "provider: listen on %s: %v\n", cfg.socket, err)
		os.Exit(1)
	}
	srv := grpc.NewServer()
	pb.RegisterCSIDriverProviderServer(srv, &server{cfg: cfg})

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		srv.Stop()
	}()

	ready, _ := json.Marshal(map[string]interface{}{"ready": true, "socket": cfg.socket})
	fmt.Println(string(ready))
	if err := srv.Serve(listener); err != nil {
		fmt.Fprintf(os.Stderr, "provider: serve: %v\n", err)
	}
	_ = os.Remove(cfg.socket)
}
