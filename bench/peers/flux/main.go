// Command flux-ssa applies a folder of YAML with Flux's apply engine
// (github.com/fluxcd/pkg/ssa), driven as kustomize-controller drives it:
// ssa.NewResourceManager with the field manager "kustomize-controller",
// SetOwnerLabels, SetConcurrency (kustomize-controller's --concurrent-ssa, 4 by
// default), normalize.UnstructuredList, then ApplyAllStaged with the Force,
// selector and Cleanup options of kustomize-controller's apply(). It prints the
// change set's actions as one JSON line, for policy-reconciler's peer benchmark.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// What kustomize-controller's constants are (api/v1 of kustomize.toolkit.fluxcd.io).
const (
	group      = "kustomize.toolkit.fluxcd.io"
	controller = "kustomize-controller"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	dir := flag.String("dir", "", "folder of *.yaml files to apply")
	name := flag.String("name", "bench", "the Kustomization's name (owner labels)")
	namespace := flag.String("namespace", "flux-system", "the Kustomization's namespace")
	concurrency := flag.Int("concurrency", 4, "kustomize-controller's --concurrent-ssa")
	qps := flag.Float64("qps", -1, "client QPS (-1: no client-side limit)")
	burst := flag.Int("burst", 300, "client burst")
	flag.Parse()
	if err := run(*kubeconfig, *dir, *name, *namespace, *concurrency, float32(*qps), *burst); err != nil {
		fmt.Fprintln(os.Stderr, "flux-ssa:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, dir, name, namespace string, concurrency int, qps float32, burst int) error {
	objects, err := readDir(dir)
	if err != nil {
		return err
	}
	manager, err := newManager(kubeconfig, qps, burst)
	if err != nil {
		return err
	}
	manager.SetOwnerLabels(objects, name, namespace)
	manager.SetConcurrency(concurrency)
	if err := normalize.UnstructuredList(objects); err != nil {
		return err
	}
	started := time.Now()
	changeSet, err := manager.ApplyAllStaged(context.Background(), objects, applyOptions())
	if err != nil {
		return err
	}
	return report(changeSet, time.Since(started))
}

func readDir(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var objects []*unstructured.Unstructured
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		read, err := ssautil.ReadObjects(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		objects = append(objects, read...)
	}
	return objects, nil
}

// newManager builds the client as a controller-runtime controller does: a direct
// (uncached) client over a dynamic REST mapper, and kstatus's poller.
func newManager(kubeconfig string, qps float32, burst int) (*ssa.ResourceManager, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = qps, burst
	cfg.UserAgent = controller + "/bench"
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	kubeClient, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return nil, err
	}
	poller := polling.NewStatusPoller(kubeClient, mapper, polling.Options{})
	return ssa.NewResourceManager(kubeClient, poller, ssa.Owner{Field: controller, Group: group}), nil
}

// applyOptions are kustomize-controller's (internal/controller, apply()) with
// spec.force false and no spec.ignore rules.
func applyOptions() ssa.ApplyOptions {
	opts := ssa.DefaultApplyOptions()
	opts.Force = false
	opts.ExclusionSelector = map[string]string{group + "/reconcile": "disabled", group + "/ssa": "Ignore"}
	opts.IfNotPresentSelector = map[string]string{group + "/ssa": "IfNotPresent"}
	opts.ForceSelector = map[string]string{group + "/force": "enabled"}
	opts.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{
			corev1.LastAppliedConfigAnnotation,
			"kustomize.toolkit.fluxcd.io/checksum",
			"fluxcd.io/sync-checksum",
		},
		Labels: []string{"fluxcd.io/sync-gc-mark"},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: controller, OperationType: metav1.ManagedFieldsOperationUpdate},
		},
		Exclusions: map[string]string{group + "/ssa": "Merge"},
	}
	return opts
}

func report(changeSet *ssa.ChangeSet, took time.Duration) error {
	actions := map[string]int{}
	for _, entry := range changeSet.Entries {
		actions[string(entry.Action)]++
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"objects": len(changeSet.Entries),
		"actions": actions,
		"seconds": took.Seconds(),
	})
}
