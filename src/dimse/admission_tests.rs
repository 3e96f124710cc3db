use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::*;

#[test]
fn ipv4_mapped_addresses_are_their_ipv4_address() {
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    assert_eq!(peer_address(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    let v6: IpAddr = "2001:db8::7".parse().unwrap();
    assert_eq!(peer_address(v6), v6, "IPv6 counts whole");
    let v4: IpAddr = "192.0.2.7".parse().unwrap();
    assert_eq!(peer_address(v4), v4);
}

#[test]
fn an_address_holds_its_share_and_gets_it_back_when_done() {
    let shares = Shares::new(2);
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.2".parse().unwrap();
    let first = shares.take(a).expect("first");
    let second = shares.take(a).expect("second");
    assert!(shares.take(a).is_none(), "a third from one address");
    let other = shares.take(b).expect("another address is not affected");
    drop(first);
    let again = shares.take(a).expect("a freed share can be taken again");
    drop((second, again, other));
    assert_eq!(shares.addresses(), 0, "nothing stays behind per address");
}

#[test]
fn the_log_budget_counts_what_it_leaves_out() {
    let budget = LogBudget::new();
    let start = Instant::now();
    for _ in 0..REFUSALS_LOGGED_PER_MINUTE {
        assert_eq!(budget.take_at(start), Some(0));
    }
    assert_eq!(budget.take_at(start + Duration::from_secs(1)), None);
    assert_eq!(budget.take_at(start + Duration::from_secs(2)), None);
    // the next window tells how many were left out
    assert_eq!(budget.take_at(start + Duration::from_secs(61)), Some(2));
    assert_eq!(budget.take_at(start + Duration::from_secs(62)), Some(0));
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// An A-ASSOCIATE-RQ-shaped PDU of `body` bytes.
fn request(body: usize) -> Vec<u8> {
    let mut pdu = vec![ASSOCIATE_RQ, 0];
    pdu.extend_from_slice(&(body as u32).to_be_bytes());
    pdu.extend(std::iter::repeat_n(7u8, body));
    pdu
}

#[tokio::test]
async fn a_request_in_pieces_counts_once_it_is_whole_and_is_not_consumed() {
    let (mut client, server) = pair().await;
    let pdu = request(3000);
    client.write_all(&pdu[..4]).await.unwrap();
    let waiting = tokio::spawn(async move { request_arrived(&server).await.map(|()| server) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "header incomplete");
    client.write_all(&pdu[4..2000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "body incomplete");
    client.write_all(&pdu[2000..]).await.unwrap();
    let server = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("seen whole")
        .unwrap()
        .unwrap();
    // every byte is still there for the association to read
    let mut all = vec![0u8; pdu.len()];
    assert_eq!(server.peek(&mut all).await.unwrap(), pdu.len());
    assert_eq!(all, pdu);
}

#[tokio::test]
async fn silence_waits_and_a_close_or_another_pdu_ends_the_wait() {
    let (client, server) = pair().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), request_arrived(&server))
            .await
            .is_err(),
        "a silent peer is waited for (until the caller's deadline)"
    );
    drop(client);
    assert!(request_arrived(&server).await.is_err(), "closed");

    let (mut client, server) = pair().await;
    client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), request_arrived(&server))
        .await
        .expect("not a request: no waiting for more")
        .unwrap();

    let (mut client, server) = pair().await;
    client.write_all(&request(1 << 20)[..70_000]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), request_arrived(&server))
        .await
        .expect("a huge request is waited for only up to the buffered size")
        .unwrap();
}
