//! Routes, authentication, permissions and error answers over real HTTP.

mod common;

use common::{env, json, read};
use reqwest::Method;
use serde_json::{json as j, Value};

#[tokio::test]
async fn credentials_in_query_body_and_header() {
    let e = env().await;
    let me = e.get_json("/members/me", e.full()).await;
    assert_eq!(me["username"], "secops");

    // OAuth header.
    let header = format!(
        "OAuth oauth_consumer_key=\"{}\", oauth_token=\"{}\"",
        e.fx.api_key, e.fx.tokens.full
    );
    let resp = e
        .client
        .get(e.url("/members/me"))
        .header("Authorization", header)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // JSON body.
    let resp = e
        .client
        .post(e.url("/cards"))
        .json(&j!({"key": e.fx.api_key, "token": e.fx.tokens.full, "idList": e.fx.list_id, "name": "json"}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");

    // Form body.
    let resp = e
        .client
        .post(e.url("/cards"))
        .form(&[
            ("key", e.fx.api_key.as_str()),
            ("token", e.fx.tokens.full.as_str()),
            ("idList", e.fx.list_id.as_str()),
            ("name", "form"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn each_401_text() {
    let e = env().await;
    let check = |resp: reqwest::Response, text: &'static str| async move {
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        let (status, body) = read(resp).await;
        assert_eq!((status, body.as_str()), (401, text));
    };
    let url = e.url("/members/me");
    check(e.client.get(&url).send().await.unwrap(), "invalid key").await;
    let other_key = "0123456789abcdef0123456789abcdef";
    check(
        e.client
            .get(&url)
            .query(&[("key", other_key), ("token", e.full())])
            .send()
            .await
            .unwrap(),
        "invalid key",
    )
    .await;
    check(
        e.client
            .get(&url)
            .query(&[("key", e.fx.api_key.as_str())])
            .send()
            .await
            .unwrap(),
        "invalid token",
    )
    .await;
    check(
        e.req(Method::GET, "/members/me", "not-a-token")
            .send()
            .await
            .unwrap(),
        "invalid token",
    )
    .await;
    check(
        e.req(Method::GET, "/members/me", &e.fx.tokens.expired)
            .send()
            .await
            .unwrap(),
        "expired token",
    )
    .await;

    // A token of another key is not valid for this one.
    let key2 = e.h.create_api_key();
    let owner = &e.fx.members[0].id;
    let t2 = e.h.create_token(
        &key2,
        owner,
        vec![trello_sim::Permission::new("*", "*", true, true)],
        None,
    );
    check(
        e.req(Method::GET, "/members/me", &t2).send().await.unwrap(),
        "invalid token",
    )
    .await;
    let resp = e
        .client
        .get(&url)
        .query(&[("key", key2.as_str()), ("token", t2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn permission_model() {
    let e = env().await;
    let board = format!("/boards/{}", e.fx.board_id);
    let ro = e.fx.tokens.read_only.clone();
    assert_eq!(e.get(&board, &ro).await.0, 200);
    let resp = e
        .req(Method::POST, "/cards", &ro)
        .query(&[("idList", e.fx.list_id.as_str()), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(resp).await,
        (401, "unauthorized permission requested".into())
    );

    let ob = e.fx.tokens.other_board_only.clone();
    assert_eq!(
        e.get(&board, &ob).await,
        (401, "unauthorized permission requested".into())
    );
    assert_eq!(
        e.get(&format!("/boards/{}", e.fx.other_board_id), &ob)
            .await
            .0,
        200
    );
    assert_eq!(e.get(&format!("/lists/{}", e.fx.list_id), &ob).await.0, 401);
    assert_eq!(
        e.get(&format!("/organizations/{}", e.fx.org_id), &ob)
            .await
            .0,
        401
    );

    // A board the owner is not on and whose org they are not in.
    let stranger = e.h.create_member("stranger", "Stranger");
    let org = e.h.create_organization("Elsewhere");
    let hidden = e.h.create_board(Some(&org), "Hidden");
    e.h.add_board_member(&hidden, &stranger);
    assert_eq!(e.get(&format!("/boards/{hidden}"), e.full()).await.0, 401);

    let boards = e
        .get_json(
            "/members/me/boards?filter=open&fields=name,closed",
            e.full(),
        )
        .await;
    let names: Vec<&str> = boards
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Security Remediation") && names.contains(&"Personal"));
    assert!(!names.contains(&"Retired Board") && !names.contains(&"Hidden"));
    let only = e.get_json("/members/me/boards", &ob).await;
    assert_eq!(only.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn not_found_vs_unauthorized_vs_bad_request() {
    let e = env().await;
    let missing = "5f0000000000000000000000";
    let t = e.full().to_owned();
    let nf = "The requested resource was not found.".to_string();
    assert_eq!(
        e.get(&format!("/boards/{missing}"), &t).await,
        (404, nf.clone())
    );
    assert_eq!(e.get(&format!("/lists/{missing}"), &t).await, (404, nf));
    assert_eq!(
        e.get(&format!("/cards/{missing}"), &t).await,
        (404, "Could not find the card".into())
    );
    assert_eq!(
        e.get("/boards/Security%20Remediation", &t).await,
        (400, "invalid id".into())
    );
    assert_eq!(e.get("/lists/12345", &t).await, (400, "invalid id".into()));
    assert_eq!(
        e.get("/nothing/here", &t).await,
        (404, "Cannot GET /1/nothing/here".into())
    );

    let resp = e
        .req(Method::POST, "/cards", &t)
        .query(&[("idList", missing), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(read(resp).await, (400, "invalid value for idList".into()));
    let resp = e
        .req(Method::POST, "/cards", &t)
        .query(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(read(resp).await, (400, "invalid value for idList".into()));

    let outsider = e.fx.member("outsider").unwrap().id.clone();
    let resp = e
        .req(Method::POST, "/cards", &t)
        .query(&[
            ("idList", e.fx.list_id.as_str()),
            ("idMembers", outsider.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 400);
    assert_eq!(
        json(&body),
        j!({"message": "Invalid objectId", "error": "ERROR"})
    );

    let long = "x".repeat(16385);
    for field in ["name", "desc"] {
        let resp = e
            .req(Method::POST, "/cards", &t)
            .json(&j!({"idList": e.fx.list_id, field: long}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            read(resp).await,
            (400, format!("invalid value for {field}"))
        );
    }
    let ok = "é".repeat(16384);
    let resp = e
        .req(Method::POST, "/cards", &t)
        .json(&j!({"idList": e.fx.list_id, "name": ok, "desc": ok}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // POST /1/checklists with an unknown idCard answers 401 (FACTS.md §9).
    let resp = e
        .req(Method::POST, "/checklists", &t)
        .query(&[("idCard", missing)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn create_card_json_and_query_then_update() {
    let e = env().await;
    let t = e.full().to_owned();
    let labels = e.h.labels(&e.fx.board_id);
    let jdoe = e.fx.member("jdoe").unwrap().id.clone();
    let resp = e
        .req(Method::POST, "/cards", &t)
        .json(&j!({
            "idList": e.fx.list_id,
            "name": "Patch CVE-2024-0001",
            "desc": "details",
            "due": "2030-01-02T03:04:05.000Z",
            "idLabels": [labels[0].id, labels[1].id],
            "idMembers": [jdoe],
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    let card = json(&body);
    let id = card["id"].as_str().unwrap().to_owned();
    assert_eq!(card["idBoard"], e.fx.board_id.as_str());
    assert_eq!(card["labels"].as_array().unwrap().len(), 2);
    assert_eq!(card["due"], "2030-01-02T03:04:05.000Z");
    assert_eq!(card["shortLink"].as_str().unwrap().len(), 8);
    assert!(card["url"]
        .as_str()
        .unwrap()
        .starts_with("https://trello.com/c/"));
    assert_eq!(card["badges"]["checkItems"], 0);

    let label_list = format!("{},{}", labels[2].id, labels[3].id);
    let resp = e
        .req(Method::POST, "/cards", &t)
        .query(&[
            ("idList", e.fx.list_id.as_str()),
            ("name", "query"),
            ("idLabels", label_list.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["idLabels"].as_array().unwrap().len(), 2);

    // PUT idLabels replaces the whole list; due null clears; move.
    let resp = e
        .req(Method::PUT, &format!("/cards/{id}"), &t)
        .json(&j!({"idLabels": labels[5].id, "due": null, "idList": e.fx.doing_list_id}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    let card = json(&body);
    assert_eq!(card["idLabels"], j!([labels[5].id]));
    assert_eq!(card["due"], Value::Null);
    assert_eq!(card["idList"], e.fx.doing_list_id.as_str());
    assert_eq!(e.h.card(&id).unwrap().id_labels, vec![labels[5].id.clone()]);

    // Single label / member add and remove.
    let resp = e
        .req(Method::POST, &format!("/cards/{id}/idLabels"), &t)
        .query(&[("value", labels[0].id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = e
        .req(
            Method::DELETE,
            &format!("/cards/{id}/idLabels/{}", labels[5].id),
            &t,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(e.h.card(&id).unwrap().id_labels, vec![labels[0].id.clone()]);
    let asmith = e.fx.member("asmith").unwrap().id.clone();
    let resp = e
        .req(Method::POST, &format!("/cards/{id}/idMembers"), &t)
        .query(&[("value", asmith.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = e
        .req(Method::DELETE, &format!("/cards/{id}/idMembers/{jdoe}"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(e.h.card(&id).unwrap().id_members, vec![asmith]);

    // Archive through PUT, then the shortLink path finds it too.
    let short = card["shortLink"].as_str().unwrap().to_owned();
    let resp = e
        .req(Method::PUT, &format!("/cards/{short}"), &t)
        .query(&[("closed", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(e.h.card(&id).unwrap().closed);

    let resp = e
        .req(Method::DELETE, &format!("/cards/{id}"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(e.h.card(&id).is_none());
}

#[tokio::test]
async fn checklists_and_items() {
    let e = env().await;
    let t = e.full().to_owned();
    let card = e.h.person_create_card(&e.fx.list_id, "with checklist", "");
    let resp = e
        .req(Method::POST, &format!("/cards/{card}/checklists"), &t)
        .query(&[("name", "Steps")])
        .send()
        .await
        .unwrap();
    let cl = json(&read(resp).await.1);
    let cl_id = cl["id"].as_str().unwrap().to_owned();
    let mut items = Vec::new();
    for name in ["one", "two"] {
        let resp = e
            .req(Method::POST, &format!("/checklists/{cl_id}/checkItems"), &t)
            .json(&j!({"name": name, "checked": name == "two"}))
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, 200, "{body}");
        items.push(json(&body)["id"].as_str().unwrap().to_owned());
    }
    let resp = e
        .req(
            Method::PUT,
            &format!("/cards/{card}/checkItem/{}", items[0]),
            &t,
        )
        .query(&[("state", "complete")])
        .send()
        .await
        .unwrap();
    assert_eq!(read(resp).await.0, 200);
    let got = e
        .get_json(&format!("/cards/{card}?checklists=all"), &t)
        .await;
    assert_eq!(got["badges"]["checkItems"], 2);
    assert_eq!(got["badges"]["checkItemsChecked"], 2);
    assert_eq!(got["checklists"][0]["checkItems"][0]["state"], "complete");

    let resp = e
        .req(
            Method::DELETE,
            &format!("/checklists/{cl_id}/checkItems/{}", items[1]),
            &t,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let lists = e.get_json(&format!("/cards/{card}/checklists"), &t).await;
    assert_eq!(lists[0]["checkItems"].as_array().unwrap().len(), 1);

    // POST /1/checklists with idCard.
    let resp = e
        .req(Method::POST, "/checklists", &t)
        .query(&[("idCard", card.as_str()), ("name", "Second")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(e.h.card(&card).unwrap().checklists.len(), 2);
}

#[tokio::test]
async fn labels_default_limit_is_50() {
    let e = env().await;
    let t = e.full().to_owned();
    let path = format!("/boards/{}/labels", e.fx.board_id);
    for i in 0..60 {
        let color = if i % 2 == 0 { "sky_dark" } else { "null" };
        let resp = e
            .req(Method::POST, &path, &t)
            .query(&[("name", format!("label {i}").as_str()), ("color", color)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = e
        .req(Method::POST, &path, &t)
        .query(&[("name", "bad"), ("color", "teal")])
        .send()
        .await
        .unwrap();
    assert_eq!(read(resp).await, (400, "invalid value for color".into()));
    let resp = e
        .req(Method::POST, "/labels", &t)
        .query(&[
            ("name", "via labels"),
            ("color", "lime"),
            ("idBoard", e.fx.board_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let default = e.get_json(&path, &t).await;
    assert_eq!(default.as_array().unwrap().len(), 50);
    let all = e
        .get_json(&format!("{path}?limit=1000&fields=name,color"), &t)
        .await;
    assert_eq!(all.as_array().unwrap().len(), 6 + 60 + 1);
    assert!(all[0].get("idBoard").is_none());
    assert_eq!(e.get(&format!("{path}?limit=1001"), &t).await.0, 400);
}

#[tokio::test]
async fn paging_2500_cards_newest_first() {
    let e = env().await;
    let t = e.full().to_owned();
    let mut created = Vec::new();
    for i in 0..2500 {
        created.push(e.h.person_create_card(&e.fx.list_id, &format!("card {i}"), ""));
    }
    let base = format!(
        "/boards/{}/cards?limit=1000&fields=id,name&filter=all",
        e.fx.board_id
    );
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let path = match seen.last() {
            Some(oldest) => format!("{base}&before={oldest}"),
            None => base.clone(),
        };
        let page = e.get_json(&path, &t).await;
        let page = page.as_array().unwrap();
        if page.is_empty() {
            break;
        }
        pages += 1;
        assert!(page.len() <= 1000);
        seen.extend(page.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 2500);
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    assert_eq!(
        e.get(&format!("/boards/{}/cards?limit=1001", e.fx.board_id), &t)
            .await
            .0,
        400
    );

    // since = card id: only newer cards.
    let newer = e
        .get_json(
            &format!("/boards/{}/cards?since={}", e.fx.board_id, created[2497]),
            &t,
        )
        .await;
    assert_eq!(newer.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn visible_filter_and_person_actions() {
    let e = env().await;
    let t = e.full().to_owned();
    let a = e.h.person_create_card(&e.fx.list_id, "a", "");
    let b = e.h.person_create_card(&e.fx.list_id, "b", "");
    let c =
        e.h.person_create_card(&e.fx.closed_list_id, "in archived list", "");
    let before = e.get_json(&format!("/cards/{a}"), &t).await["dateLastActivity"].clone();
    std::thread::sleep(std::time::Duration::from_millis(5));
    e.h.person_archive_card(&b);
    e.h.person_move_card(&a, &e.fx.done_list_id);
    e.h.person_edit_desc(&a, "edited");
    let label = e.h.labels(&e.fx.board_id)[0].id.clone();
    e.h.person_add_label(&a, &label);
    let jdoe = e.fx.member("jdoe").unwrap().id.clone();
    e.h.person_add_member(&a, &jdoe);
    let cl = e.h.person_add_checklist(&a, "todo");
    let item = e.h.person_add_check_item(&cl, "step");
    e.h.person_tick_check_item(&a, &item, true);

    let got = e
        .get_json(&format!("/cards/{a}?checklists=all&members=true"), &t)
        .await;
    assert_eq!(got["idList"], e.fx.done_list_id.as_str());
    assert_eq!(got["desc"], "edited");
    assert_eq!(got["idLabels"], j!([label]));
    assert_eq!(got["members"][0]["username"], "jdoe");
    assert_eq!(got["checklists"][0]["checkItems"][0]["state"], "complete");
    assert_ne!(got["dateLastActivity"], before);

    let ids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let visible = ids(e
        .get_json(&format!("/boards/{}/cards", e.fx.board_id), &t)
        .await);
    assert_eq!(visible, vec![a.clone()]);
    let open = ids(e
        .get_json(&format!("/boards/{}/cards/open", e.fx.board_id), &t)
        .await);
    assert_eq!(open, vec![c.clone(), a.clone()]);
    let closed = ids(e
        .get_json(
            &format!("/boards/{}/cards?filter=closed", e.fx.board_id),
            &t,
        )
        .await);
    assert_eq!(closed, vec![b.clone()]);

    e.h.person_unarchive_card(&b);
    e.h.person_delete_card(&a);
    assert_eq!(e.get(&format!("/cards/{a}"), &t).await.0, 404);
    let all = ids(e
        .get_json(&format!("/boards/{}/cards/all", e.fx.board_id), &t)
        .await);
    assert_eq!(all, vec![c, b]);

    let lists = e
        .get_json(
            &format!(
                "/boards/{}/lists?filter=all&fields=name,closed",
                e.fx.board_id
            ),
            &t,
        )
        .await;
    assert_eq!(lists.as_array().unwrap().len(), 4);
    let open_lists = e
        .get_json(&format!("/boards/{}/lists", e.fx.board_id), &t)
        .await;
    assert_eq!(open_lists.as_array().unwrap().len(), 3);
    let members = e
        .get_json(&format!("/boards/{}/members", e.fx.board_id), &t)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 3);
    assert_eq!(
        members[0],
        j!({"id": e.fx.members[0].id, "username": "secops", "fullName": "Security Operations"})
    );
    let board = e
        .get_json(
            &format!(
                "/boards/{}?fields=name,idOrganization,closed",
                e.fx.board_id
            ),
            &t,
        )
        .await;
    assert_eq!(board["idOrganization"], e.fx.org_id.as_str());
    let org = e
        .get_json(&format!("/organizations/{}", e.fx.org_id), &t)
        .await;
    assert_eq!(org["displayName"], "Acme Security");
    let list = e
        .get_json(&format!("/lists/{}", e.fx.closed_list_id), &t)
        .await;
    assert_eq!(list["closed"], true);
    let member = e.get_json("/members/jdoe", &t).await;
    assert_eq!(member["id"], jdoe.as_str());
}

#[tokio::test]
async fn tokens_and_revoke() {
    let e = env().await;
    let rev = e.fx.tokens.revocable.clone();
    let info = e
        .get_json(
            &format!("/tokens/{rev}?fields=idMember,dateExpires,permissions"),
            &rev,
        )
        .await;
    assert_eq!(info["idMember"], e.fx.members[0].id.as_str());
    assert_eq!(info["dateExpires"], Value::Null);
    assert_eq!(
        info["permissions"][0],
        j!({"idModel": "*", "modelType": "Board", "read": true, "write": true})
    );
    let owner = e.get_json(&format!("/tokens/{rev}/member"), &rev).await;
    assert_eq!(owner["username"], "secops");

    // Read-only tokens cannot revoke (write is required).
    let ro = e.fx.tokens.read_only.clone();
    let resp = e
        .req(Method::DELETE, &format!("/tokens/{ro}/"), &ro)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let resp = e
        .req(Method::DELETE, &format!("/tokens/{rev}/"), &rev)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(e.h.token_revoked(&rev));
    assert_eq!(
        e.get("/members/me", &rev).await,
        (401, "invalid token".into())
    );
    let log = e.h.request_log();
    assert!(log
        .iter()
        .any(|r| r.path == "/1/tokens/{token}/" && r.route == "/1/tokens/{token}/"));
    assert!(log.iter().all(|r| !r.path.contains(&rev)));
}

#[tokio::test]
async fn batch_answers_in_order() {
    let e = env().await;
    let t = e.full().to_owned();
    let urls = format!(
        "/boards/{},/lists/5f0000000000000000000000,/members/me?fields=username,/boards/{}",
        e.fx.board_id, e.fx.other_board_id
    );
    let out = e
        .get_json(
            &format!(
                "/batch?urls={}",
                urls.replace('?', "%3F")
                    .replace('=', "%3D")
                    .replace(',', "%2C")
            ),
            &t,
        )
        .await;
    // Commas encoded in the query are still separators after decoding.
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(out[0]["200"]["name"], "Security Remediation");
    assert_eq!(out[1]["statusCode"], 404);
    assert_eq!(out[1]["message"], "The requested resource was not found.");
    assert_eq!(
        out[2]["200"],
        j!({"id": e.fx.members[0].id, "username": "secops"})
    );
    assert!(out[3].get("200").is_some());

    let ob = e.fx.tokens.other_board_only.clone();
    let out = e
        .get_json(&format!("/batch?urls=/boards/{}", e.fx.board_id), &ob)
        .await;
    assert_eq!(out[0]["statusCode"], 401);
    let eleven = vec![format!("/boards/{}", e.fx.board_id); 11].join(",");
    assert_eq!(e.get(&format!("/batch?urls={eleven}"), &t).await.0, 400);
    // One batch is one request in the log.
    assert_eq!(
        e.h.request_log()
            .iter()
            .filter(|r| r.route == "/1/batch")
            .count(),
        3
    );
}

#[tokio::test]
async fn uri_too_long_before_auth() {
    let e = env().await;
    let resp = e
        .client
        .get(e.url("/cards"))
        .query(&[("desc", "d".repeat(9000))])
        .send()
        .await
        .unwrap();
    assert_eq!(read(resp).await, (414, "Request-URI Too Large".into()));
    let long_desc = "漏".repeat(1000);
    let resp = e
        .req(Method::POST, "/cards", e.full())
        .query(&[
            ("idList", e.fx.list_id.as_str()),
            ("desc", long_desc.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 414);
    let resp = e
        .req(Method::POST, "/cards", e.full())
        .json(&j!({"idList": e.fx.list_id, "desc": long_desc}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(e.h.count_status(414), 2);
}

/// `POST /cards` with `idCardSource` and `keepFromSource=checklists` copies the source's
/// checklists (items with their states) in the same request, takes name and description
/// from the request, nothing else from the source, and shares no item with it; an
/// archived source gives an open card. `POST /checklists` with `idChecklistSource`
/// copies one checklist's items. Unknown sources and keeps are refused (ADR 0006).
#[tokio::test]
async fn copies_by_card_and_checklist_source() {
    let e = env().await;
    let t = e.full().to_owned();
    let label = e.h.create_label(&e.fx.board_id, "src-label", Some("red"));
    let src =
        e.h.person_create_card(&e.fx.list_id, "template", "[template]");
    e.h.person_add_label(&src, &label);
    let cl = e.h.person_add_checklist(&src, "Remediation");
    let a = e.h.person_add_check_item(&cl, "a");
    e.h.person_add_check_item(&cl, "b");
    e.h.person_tick_check_item(&src, &a, true);
    e.h.person_archive_card(&src);

    let resp = e
        .req(Method::POST, "/cards", &t)
        .json(&j!({"idList": e.fx.list_id, "name": "copy", "desc": "mine",
                   "idCardSource": src, "keepFromSource": "checklists"}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    let copy = json(&body)["id"].as_str().unwrap().to_owned();
    // The log names the parameters a request carried, never their values or the token.
    let (last, params) = e.h.request_log_with_params().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.route.as_str()),
        ("POST", "/1/cards")
    );
    assert_eq!(
        params,
        ["desc", "idCardSource", "idList", "keepFromSource", "name"]
    );
    let c = e.h.card(&copy).unwrap();
    assert_eq!(
        (c.name.as_str(), c.desc.as_str(), c.closed),
        ("copy", "mine", false)
    );
    assert!(c.id_labels.is_empty(), "labels are not kept unless asked");
    let items: Vec<(String, bool)> = c.checklists[0]
        .items
        .iter()
        .map(|i| (i.name.clone(), i.complete))
        .collect();
    assert_eq!(c.checklists[0].name, "Remediation");
    assert_eq!(
        items,
        [("a".into(), true), ("b".into(), false)],
        "states travel with the copy"
    );

    // A tick on the copy stays on the copy.
    let b_copy = c.checklists[0].items[1].id.clone();
    e.h.person_tick_check_item(&copy, &b_copy, true);
    let s = e.h.card(&src).unwrap();
    assert!(!s.checklists[0].items[1].complete);
    assert_ne!(s.checklists[0].items[1].id, b_copy);

    // The default keep is all: labels come too.
    let resp = e
        .req(Method::POST, "/cards", &t)
        .json(&j!({"idList": e.fx.list_id, "idCardSource": src}))
        .send()
        .await
        .unwrap();
    let all = json(&read(resp).await.1)["id"].as_str().unwrap().to_owned();
    let all = e.h.card(&all).unwrap();
    assert_eq!(
        (all.name.as_str(), all.id_labels.clone()),
        ("template", vec![label])
    );

    // Refusals.
    for (k, v) in [
        ("idCardSource", "0123456789abcdef01234567"),
        ("idCardSource", "x"),
    ] {
        let resp = e
            .req(Method::POST, "/cards", &t)
            .json(&j!({"idList": e.fx.list_id, k: v}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            read(resp).await,
            (400, "invalid value for idCardSource".into())
        );
    }
    let resp = e
        .req(Method::POST, "/cards", &t)
        .json(&j!({"idList": e.fx.list_id, "idCardSource": src, "keepFromSource": "everything"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(resp).await,
        (400, "invalid value for keepFromSource".into())
    );

    // idChecklistSource.
    let target = e.h.person_create_card(&e.fx.list_id, "target", "");
    let resp = e
        .req(Method::POST, "/checklists", &t)
        .query(&[
            ("idCard", target.as_str()),
            ("idChecklistSource", cl.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    let got = e.h.card(&target).unwrap();
    assert_eq!(got.checklists[0].name, "Remediation");
    assert_eq!(got.checklists[0].items.len(), 2);
    assert!(got.checklists[0].items[0].complete);
    let resp = e
        .req(Method::POST, "/checklists", &t)
        .query(&[
            ("idCard", target.as_str()),
            ("idChecklistSource", "0123456789abcdef01234567"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(resp).await,
        (400, "invalid value for idChecklistSource".into())
    );
}
