// Package connectresilience adapts the resilience pipeline to Connect
// clients (which speak the Connect, gRPC and gRPC-Web protocols): an
// interceptor runs each unary call through breakers, retries with a
// budget, timeouts and the other policies, classifying status codes into
// retryable failures, failures and neutral business answers; client
// streams pass the pipeline's circuit breaker.
//
//	breakers, _ := resilience.NewBreakers(100, resilience.BreakerOptions{})
//	budget, _ := resilience.NewBudget(resilience.BudgetOptions{})
//	ic, err := connectresilience.NewInterceptor(connectresilience.Options{},
//		resilience.Retry{Budget: budget}, breakers, resilience.Timeout(time.Second))
//	client := eventstorev1connect.NewEventStoreServiceClient(http.DefaultClient, url, connect.WithInterceptors(ic))
package connectresilience
