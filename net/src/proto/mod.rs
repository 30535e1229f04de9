//! The etcd v3 API messages (etcdserverpb, mvccpb, authpb, v3lockpb, v3electionpb) as prost structs.
