module monis.app/mlog

go 1.25.9

require (
	k8s.io/component-base v0.30.1
	k8s.io/klog/v2 v2.120.1
)
