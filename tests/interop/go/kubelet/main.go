// Command kubelet is a grpc-go stand-in for kubelet's CSI client: it dials the driver's unix socket the
// way kubelet does and makes the calls kubelet makes when a pod with a secrets-store volume starts and
// stops. Each sub-command is one step, so a test can check the node between steps:
//
//	kubelet -endpoint unix:///csi/csi.sock identity     GetPluginInfo, GetPluginCapabilities, Probe,
//	                                                    ControllerGetCapabilities, NodeGetCapabilities, NodeGetInfo
//	kubelet -endpoint ... [publish flags] publish        NodePublishVolume
//	kubelet -endpoint ... [publish flags] unpublish      NodeUnpublishVolume
//	kubelet -endpoint ... [publish flags] lifecycle      identity, publish, publish again (remount), unpublish
//
// Every call prints one JSON line on stdout: {"call","ok":true,"response"} or
// {"call","ok":false,"code":"NotFound","codeNumber":5,"message"}. The exit code is 0 when every call
// succeeded, 1 when a call failed and 2 for a usage or connection error.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	_ "interop/codec"
	csi "interop/gen/csi"
)

type mapFlag map[string]string

func (m mapFlag) String() string { return fmt.Sprint(map[string]string(m)) }
func (m mapFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want key=value, got %q", v)
	}
	m[k] = val
	return nil
}

type config struct {
	endpoint       string
	dial           string
	timeout        time.Duration
	volumeID       string
	targetPath     string
	spc            string
	podName        string
	podNamespace   string
	podUID         string
	serviceAccount string
	readonly       bool
	ephemeral      bool
	secrets        mapFlag
	attributes     mapFlag
}

type clients struct {
	identity   csi.IdentityClient
	node       csi.NodeClient
	controller csi.ControllerClient
}

// dial connects like kubelet's csi_client.go: the bare socket path as target, with a unix context dialer.
// The :authority a client sends on a unix socket differs between versions, and the -dial modes reproduce
// each (a server that rejects one fails every call from such a client):
//
//	kubelet         "localhost": kubelet since Kubernetes 1.26 sets grpc.WithAuthority("localhost")
//	kubelet-legacy  the raw socket path: kubelet up to 1.25 (grpc-go then used the target as authority)
//	grpc-escaped    the socket path percent-encoded: current grpc-go for a bare-path target without
//	                WithAuthority (CSI tools that dial like old kubelets, built with new grpc-go)
//	unix            grpc.Dial("unix:///path"): "localhost"
func dial(cfg config) (*grpc.ClientConn, error) {
	path := strings.TrimPrefix(cfg.endpoint, "unix://")
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	opts := []grpc.DialOption{grpc.WithInsecure(), grpc.WithBlock()}
	unixDialer := grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", addr)
	})
	switch cfg.dial {
	case "kubelet":
		return grpc.DialContext(ctx, path, append(opts, unixDialer, grpc.WithAuthority("localhost"))...)
	case "kubelet-legacy":
		return grpc.DialContext(ctx, path, append(opts, unixDialer)...)
	case "grpc-escaped":
		// The Debian grpc-go predates authority escaping, so the escaped form is set explicitly.
		return grpc.DialContext(ctx, path, append(opts, unixDialer, grpc.WithAuthority(encodeAuthority(path)))...)
	case "unix":
		return grpc.DialContext(ctx, "unix://"+path, opts...)
	}
	return nil, fmt.Errorf("-dial must be kubelet, kubelet-legacy, grpc-escaped or unix, not %q", cfg.dial)
}

// encodeAuthority percent-encodes every byte that RFC 3986 does not allow in an authority, as grpc-go does.
func encodeAuthority(authority string) string {
	var b strings.Builder
	for i := 0; i < len(authority); i++ {
		c := authority[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~!$&'()*+,;=:[]@", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// call runs one RPC under the per-call timeout and prints its outcome; it reports success.
func call(cfg config, name string, rpc func(ctx context.Context) (proto.Message, error)) bool {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	resp, err := rpc(ctx)
	line := map[string]interface{}{"call": name, "ok": err == nil}
	if err != nil {
		st := status.Convert(err)
		line["code"] = st.Code().String()
		line["codeNumber"] = int(st.Code())
		line["message"] = st.Message()
	} else {
		raw, merr := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(resp)
		if merr != nil {
			line["ok"] = false
			line["message"] = merr.Error()
		} else {
			line["response"] = json.RawMessage(raw)
		}
	}
	out, _ := json.Marshal(line)
	fmt.Println(string(out))
	return err == nil
}

func identity(cfg config, c clients) bool {
	ok := call(cfg, "GetPluginInfo", func(ctx context.Context) (proto.Message, error) {
		return c.identity.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	})
	ok = call(cfg, "GetPluginCapabilities", func(ctx context.Context) (proto.Message, error) {
		return c.identity.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{})
	}) && ok
	ok = call(cfg, "Probe", func(ctx context.Context) (proto.Message, error) {
		return c.identity.Probe(ctx, &csi.ProbeRequest{})
	}) && ok
	ok = call(cfg, "ControllerGetCapabilities", func(ctx context.Context) (proto.Message, error) {
		return c.controller.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	}) && ok
	ok = call(cfg, "NodeGetCapabilities", func(ctx context.Context) (proto.Message, error) {
		return c.node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	}) && ok
	return call(cfg, "NodeGetInfo", func(ctx context.Context) (proto.Message, error) {
		return c.node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	}) && ok
}

// publishRequest is what kubelet sends for an inline secrets-store volume (csi_mounter.go SetUpAt).
func publishRequest(cfg config) *csi.NodePublishVolumeRequest {
	volumeContext := map[string]string{
		"secretProviderClass":                    cfg.spc,
		"csi.storage.k8s.io/pod.name":            cfg.podName,
		"csi.storage.k8s.io/pod.namespace":       cfg.podNamespace,
		"csi.storage.k8s.io/pod.uid":             cfg.podUID,
		"csi.storage.k8s.io/serviceAccount.name": cfg.serviceAccount,
	}
	if cfg.ephemeral {
		volumeContext["csi.storage.k8s.io/ephemeral"] = "true"
	}
	for k, v := range cfg.attributes {
		volumeContext[k] = v
	}
	return &csi.NodePublishVolumeRequest{
		VolumeId:   cfg.volumeID,
		TargetPath: cfg.targetPath,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY},
		},
		Readonly:      cfg.readonly,
		Secrets:       cfg.secrets,
		VolumeContext: volumeContext,
	}
}

func publish(cfg config, c clients) bool {
	return call(cfg, "NodePublishVolume", func(ctx context.Context) (proto.Message, error) {
		return c.node.NodePublishVolume(ctx, publishRequest(cfg))
	})
}

func unpublish(cfg config, c clients) bool {
	return call(cfg, "NodeUnpublishVolume", func(ctx context.Context) (proto.Message, error) {
		return c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: cfg.volumeID, TargetPath: cfg.targetPath})
	})
}

func main() {
	cfg := config{secrets: mapFlag{}, attributes: mapFlag{}}
	flag.StringVar(&cfg.endpoint, "endpoint", "", "driver endpoint, unix:///path/csi.sock (required)")
	flag.StringVar(&cfg.dial, "dial", "kubelet", "how to dial, and so which :authority is sent: kubelet, kubelet-legacy, grpc-escaped or unix")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "deadline of each call")
	flag.StringVar(&cfg.volumeID, "volume-id", "csi-0123456789abcdef", "volume_id")
	flag.StringVar(&cfg.targetPath, "target-path", "", "target_path")
	flag.StringVar(&cfg.spc, "spc", "", "volume_context secretProviderClass")
	flag.StringVar(&cfg.podName, "pod-name", "app", "csi.storage.k8s.io/pod.name")
	flag.StringVar(&cfg.podNamespace, "pod-namespace", "default", "csi.storage.k8s.io/pod.namespace")
	flag.StringVar(&cfg.podUID, "pod-uid", "7b3f9a52-0c2e-4d4b-9a61-1f0e2d3c4b5a", "csi.storage.k8s.io/pod.uid")
	flag.StringVar(&cfg.serviceAccount, "service-account", "default", "csi.storage.k8s.io/serviceAccount.name")
	flag.BoolVar(&cfg.readonly, "readonly", true, "readonly")
	flag.BoolVar(&cfg.ephemeral, "ephemeral", true, "send csi.storage.k8s.io/ephemeral=true (inline volume)")
	flag.Var(cfg.secrets, "secret", "key=value in NodePublishVolumeRequest.secrets (repeatable)")
	flag.Var(cfg.attributes, "attr", "key=value added to volume_context (repeatable)")
	flag.Parse()

	if cfg.endpoint == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: kubelet -endpoint unix:///path/csi.sock [flags] identity|publish|unpublish|lifecycle")
		os.Exit(2)
	}
	conn, err := dial(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubelet: cannot connect to %s: %v\n", cfg.endpoint, err)
		os.Exit(2)
	}
	defer conn.Close()
	c := clients{identity: csi.NewIdentityClient(conn), node: csi.NewNodeClient(conn), controller: csi.NewControllerClient(conn)}

	var ok bool
	switch step := flag.Arg(0); step {
	case "identity":
		ok = identity(cfg, c)
	case "publish":
		ok = publish(cfg, c)
	case "unpublish":
		ok = unpublish(cfg, c)
	case "lifecycle":
		// Stop at the first failure, as kubelet would not go on to use a volume that failed to mount.
		ok = identity(cfg, c) && publish(cfg, c) && publish(cfg, c) && unpublish(cfg, c)
	default:
		fmt.Fprintf(os.Stderr, "kubelet: unknown step %q\n", step)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}
