// Command registrar registers a CSI driver with kubelet's plugin watcher: the part of
// kubernetes-csi/node-driver-registrar that the real-node tests need, written for them because that module
// cannot be fetched on the machines these tests run on (see tests/node/README.md).
//
// It asks the driver for its name (CSI Identity.GetPluginInfo on --csi-address), then serves kubelet's
// pluginregistration.v1 Registration API on <--plugin-registration-path>/<name>-reg.sock: GetInfo answers
// type CSIPlugin, the driver's name, --kubelet-registration-path as the endpoint kubelet dials, and the
// registration API versions; NotifyRegistrationStatus logs kubelet's verdict and exits non-zero when kubelet
// refused the plugin, as node-driver-registrar does, so a supervisor sees the failure.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// supportedVersions are the versions of kubelet's plugin registration API this registrar speaks.
var supportedVersions = []string{"1.0.0"}

type registrationServer struct {
	registerapi.UnimplementedRegistrationServer
	driverName string
	endpoint   string
	refused    chan string
}

func (s *registrationServer) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	log.Printf("kubelet asked for the plugin info: name %q, endpoint %q", s.driverName, s.endpoint)
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              s.driverName,
		Endpoint:          s.endpoint,
		SupportedVersions: supportedVersions,
	}, nil
}

func (s *registrationServer) NotifyRegistrationStatus(_ context.Context, status *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if status.PluginRegistered {
		log.Printf("kubelet registered %s", s.driverName)
	} else {
		log.Printf("kubelet refused %s: %s", s.driverName, status.Error)
		s.refused <- status.Error
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

// driverName asks the CSI driver on csiAddress for its name, retrying until it answers or ctx ends.
func driverName(ctx context.Context, csiAddress string) (string, error) {
	conn, err := grpc.NewClient("unix://"+csiAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	identity := csi.NewIdentityClient(conn)
	for {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := identity.GetPluginInfo(callCtx, &csi.GetPluginInfoRequest{})
		cancel()
		if err == nil {
			if info.GetName() == "" {
				return "", fmt.Errorf("the CSI driver on %s answered GetPluginInfo with an empty name", csiAddress)
			}
			return info.GetName(), nil
		}
		log.Printf("waiting for the CSI driver on %s: %v", csiAddress, err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the CSI driver on %s did not answer GetPluginInfo: %v", csiAddress, err)
		case <-time.After(time.Second):
		}
	}
}

func main() {
	csiAddress := flag.String("csi-address", "/run/csi/socket", "path of the CSI driver's socket, as this process sees it")
	kubeletPath := flag.String("kubelet-registration-path", "", "path of the CSI driver's socket, as kubelet sees it (required)")
	registrationDir := flag.String("plugin-registration-path", "/registration", "kubelet's plugins_registry directory")
	connectTimeout := flag.Duration("timeout", time.Minute, "how long to wait for the CSI driver to answer")
	flag.Int("v", 0, "accepted for node-driver-registrar's command line; this registrar always logs the same")
	flag.Parse()
	if *kubeletPath == "" {
		log.Fatal("--kubelet-registration-path is required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	connectCtx, cancel := context.WithTimeout(ctx, *connectTimeout)
	name, err := driverName(connectCtx, *csiAddress)
	cancel()
	if err != nil {
		log.Fatal(err)
	}

	socket := filepath.Join(*registrationDir, name+"-reg.sock")
	if err := os.Remove(socket); err != nil && !os.IsNotExist(err) {
		log.Fatalf("cannot remove the stale registration socket %s: %v", socket, err)
	}
	listener, err := net.Listen("unix", socket)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v", socket, err)
	}
	server := grpc.NewServer()
	refused := make(chan string, 1)
	registerapi.RegisterRegistrationServer(server, &registrationServer{driverName: name, endpoint: *kubeletPath, refused: refused})
	go func() {
		if err := server.Serve(listener); err != nil {
			log.Fatalf("registration server on %s failed: %v", socket, err)
		}
	}()
	log.Printf("serving the registration of %s on %s", name, socket)

	exit := 0
	select {
	case <-ctx.Done():
	case <-refused:
		exit = 1
	}
	server.Stop()
	os.Remove(socket)
	os.Exit(exit)
}
