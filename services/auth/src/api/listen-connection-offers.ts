import { auth } from "@phoenix/proto";
import type { CallContext, ResponseStream } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { authenticateClient } from "./authenticate.js";
import { serveQueueListen } from "./listen.js";

/** ListenConnectionOffers: live listening on the signing client's connection queue. */
export async function listenConnectionOffers(
  ctx: AuthContext,
  requests: AsyncIterable<auth.ListenConnectionOffersRequest>,
  call: CallContext,
  stream: ResponseStream<auth.ListenConnectionOffersResponse>,
): Promise<void> {
  await serveQueueListen(
    ctx,
    requests,
    call.signal,
    (event) => stream.send({ event }),
    async (tx, init, now) => {
      const { tbs, clientKey } = await authenticateClient(
        ctx,
        tx,
        init,
        auth.ListenConnectionOffersTbs,
        auth.AuthServiceService.listenConnectionOffers,
        now,
      );
      return { owner: { client: clientKey }, sequenceNumberStart: tbs.sequenceNumberStart };
    },
  );
}
