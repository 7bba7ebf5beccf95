//! Patches as Kubernetes applies them: the patch metadata of every list
//! field ([`meta`], one table shared by the server's strategic merge and the
//! OpenAPI documents' `x-kubernetes-patch-*` extensions).

pub mod meta;
