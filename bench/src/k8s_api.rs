//! A stand-in for the Kubernetes API server, enough for `profgen agent`: the pod watch answers
//! with a given stream and then stays open (a quiet cluster, as a real watch does); anything
//! else (the ReplicaSet the agent asks for to name the workload) is the API server's 404, so
//! the agent names the workload from the pod alone, as it does without that permission.
//!
//! The tests replay the capture the same way (`tests/support/cluster.rs`, `serve_api`); the
//! bench cannot use test code, so this is the part of it the agent needs.

use std::{
    fs,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use anyhow::Result;

pub struct Api {
    pub url: String,
    stop: Arc<AtomicBool>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// The apiserver's reply for a missing object.
fn not_found(name: &str) -> String {
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"replicasets.apps \"{name}\" not found","reason":"NotFound","details":{{"name":"{name}","group":"apps","kind":"replicasets"}},"code":404}}"#
    )
}

/// Serves `watch` to every `GET …/pods?…watch=true…` of `namespace`.
pub fn serve(namespace: &str, watch: String) -> Result<Api> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let stop = Arc::new(AtomicBool::new(false));
    let pods = format!("/api/v1/namespaces/{namespace}/pods");
    let stopping = stop.clone();
    thread::spawn(move || {
        for sock in listener.incoming() {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            let Ok(sock) = sock else { continue };
            let (watch, pods, stopping) = (watch.clone(), pods.clone(), stopping.clone());
            thread::spawn(move || answer(sock, &pods, &watch, &stopping));
        }
    });
    Ok(Api { url, stop })
}

fn answer(mut sock: TcpStream, pods: &str, watch: &str, stop: &AtomicBool) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match sock.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == pods && query.contains("watch=true") {
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{watch}"
        );
        let _ = sock.write_all(reply.as_bytes());
        while !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(100));
        }
        return;
    }
    let body = not_found(path.rsplit('/').next().unwrap_or(""));
    let reply = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(reply.as_bytes());
}

/// A kubeconfig naming `server`, with no credentials (the stand-in asks for none).
pub fn kubeconfig(dir: &Path, server: &str) -> Result<PathBuf> {
    let path = dir.join("kubeconfig");
    fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: replay\n  cluster:\n    server: {server}\n\
             contexts:\n- name: replay\n  context:\n    cluster: replay\n    user: replay\n\
             current-context: replay\nusers:\n- name: replay\n  user: {{}}\n"
        ),
    )?;
    Ok(path)
}
